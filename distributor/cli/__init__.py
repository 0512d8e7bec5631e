"""The ``swarmqueue`` command line; each command group lives in its own module.

Modules are imported when one of their commands runs (see ``SwarmGroup.lazy``), so an agent's
``swarmqueue next`` does not pay for the demo, messaging or asyncio imports.
"""

from distributor.cli.app import main

_MODULES = {
    "distributor.cli.tasks": (
        "next", "claim", "done", "start", "heartbeat", "fail", "release", "retry", "cancel",
        "reap", "tasks", "task", "status",
    ),
    "distributor.cli.plans": ("plan",),
    "distributor.cli.add": ("add",),
    "distributor.cli.agents": ("agents",),
    "distributor.cli.messages": (
        "broadcast", "send", "deliveries", "inbox", "worker", "redispatch", "ack", "ratelimit",
    ),
    "distributor.cli.events": ("events", "watch"),
    "distributor.cli.swarms": ("swarms", "swarm"),
    "distributor.cli.mcp": ("mcp",),
    "distributor.cli.prime": ("prime",),
    "distributor.cli.reservations": ("reserve", "unreserve", "reservations"),
    "distributor.cli.guard": ("guard",),
    "distributor.cli.dashboard": ("dashboard", "metrics"),
    "distributor.demo.command": ("demo",),
}  # fmt: skip
main.lazy.update({name: module for module, names in _MODULES.items() for name in names})

__all__ = ["main"]
