"""Every Redis key and channel of a swarm, in one place.

All keys of swarm ``S`` start with ``swarmqueue:{S}:``. The braces are a Redis Cluster hash tag:
every key of one swarm lands in the same hash slot, so each Lua script (which touches many of
them at once) runs unchanged on a cluster.

=========================  ===========  ====================================================
key (after the prefix)     type         holds
=========================  ===========  ====================================================
``task:<id>``              hash         the task's fields and state (times in ms); ``unmet``
                                        counts its unfinished dependencies, ``dependents``
                                        lists (comma-separated) the tasks waiting on it,
                                        ``layer`` is its depth in the graph (set at submit
                                        and add; absent on tasks of older versions)
``ready``                  sorted set   claimable tasks; score = priority, then order
``delayed``                sorted set   ``waiting`` tasks (in a retry backoff); score = retry_at
``claimed``                sorted set   claimed / in-progress tasks; score = lease expiry ms
``all``                    sorted set   every task; score = submission order
``failed``                 set          failed tasks (to say what blocks their dependents)
``counts``                 hash         number of tasks per status (progress in O(1))
``seq``                    string       submission counter
``clock``                  string       ms added to Redis TIME (tests and simulations only)
``events``                 stream       the event log, capped by length
``req:<request id>``       string       a stored reply (the request's digest, then its JSON),
                                        so the same request sent again is answered once
``agents``                 sorted set   registered agents; score = last seen ms (presence)
``agent:<id>``             hash         an agent's address: host, tmux pane, socket, capabilities
``msg:<id>``               hash         a message: sender, type, sanitized content, time, hosts
                                        (and ``job:<host>``, the delivery job that replaced the
                                        first one, see ``lua/msg_redispatch.lua``)
``deliveries:<id>``        hash         per recipient of a message: its outcome as JSON
``inbox:<agent>``          stream       messages addressed to the agent, capped by length
``inbox_read``             hash         agent -> id of the last inbox entry it read
``rate:<sender>``          sorted set   the sender's messages in the last minute (rate limit)
``refused``                hash         per sender, messages refused by the rate limit (metrics)
``outbox:<host>``          sorted set   messages with recipients on ``host`` not all final;
                                        score = when a worker's sweep next looks at it (ms)
``hosts``                  set          every host a message of the swarm was sent to
``acks``                   sorted set   messages with recipients whose acknowledgement is
                                        awaited; score = when the next re-delivery (or the
                                        give-up) of one of them is due (ms)
``thread:<root id>``       sorted set   a thread: its root (score 0) and the replies, score =
                                        their order (``lua/msg_send.lua``)
``delivering:<id>:<host>`` string       the lease of the job delivering message ``id`` on
                                        ``host``: ``<worker> <attempt>``, expiring (PX)
``resv:all``               hash         file reservations: id -> JSON record
``resv:exp``               sorted set   reservation ids; score = expiry ms
``resv:at:<node>``         set          reservations filed at a path (see
                                        ``lua/include/reservations.lua``)
``resv:sub:<node>``        set          reservations filed under a directory
``counters``               hash         what failed after a transition committed (a failed
                                        announcement or enqueue, a replication shortfall),
                                        by kind, and the last reason of each
``slot-guard``             (none)       never written: every script call names it last in
                                        ``KEYS`` (see "Redis Cluster" below)
=========================  ===========  ====================================================

One key lives outside every swarm, so it has no hash tag and no script touches it:
``swarmqueue:host:<host>:swarms`` (set), the swarms with agents registered on ``host``, written
when an agent registers and when a delivery job runs; each worker's sweep reads it to find the
outboxes it serves (workers have no ``SCAN``; see ``workers/sweep.py``).

The shard channel (``SPUBLISH``/``SSUBSCRIBE``, in the swarm's slot like its keys)
``swarmqueue:{S}:events`` carries one message per script call (stream id, type,
task id of its first event; a plan's ``submitted`` events share one, for the last), so waiting
agents wake at once; the stream is the durable copy.

Lua scripts get the fixed keys as ``KEYS`` in the order of :meth:`SwarmKeys.script_keys` and
build per-task keys from the prefix passed as ``ARGV[1]`` with the same suffixes as above.

Redis Cluster: declared and undeclared keys
-------------------------------------------
Decision: scripts keep building per-task, per-request and per-agent keys from the prefix; each
such script starts with Dragonfly's flag line ``--!df flags=allow-undeclared-keys`` (a comment
to Redis and Valkey); and every script call names the swarm's ``slot-guard`` key last in
``KEYS``, a key nobody writes. Why:

- Declaring every key cannot be complete. ``claim_next`` and ``reap`` pick tasks from a sorted
  set, ``complete`` unblocks the dependents listed in the task's hash, ``msg_send`` and
  ``agent_prune`` walk the agents: those keys are chosen inside the script. Declaring them
  would need a read first and a script that refuses when the read went stale: one more round
  trip on the hot path (claim, complete) for no gain below.
- What declared keys buy on a cluster is routing, and the ``{swarm}`` hash tag already puts
  every key of a swarm in one slot, so the first key routes the call and every key the script
  builds is local: Redis 7 and Valkey run such scripts unchanged while the slot stays put.
- While the slot migrates (``CLUSTER SETSLOT ... MIGRATING/IMPORTING`` and ``MIGRATE`` in
  batches) undeclared keys are unsafe on Redis 7.0: on the source a script whose declared keys
  are all still there runs, and its first touch of a key already moved fails with "Script
  attempted to access a non local key" after earlier writes were applied (a script error does
  not roll back); on the target (after ``ASK``) a key not yet moved reads as missing. Declaring
  the known keys would not close this: claim_next's chosen task stays undeclared. The guard
  closes it for every script: a declared key that never exists is always "missing", so while
  the slot is migrating the source answers ``ASK`` (or ``TRYAGAIN``: Redis 7.2+), the target
  answers ``TRYAGAIN`` to a multi-key call with a missing key, and no script runs anywhere
  until ``SETSLOT NODE`` ends the migration. Both are refusals before anything ran, which the
  executor resends within the retry budget (:mod:`distributor.store.calls`). The swarm pauses
  for as long as its one slot is in transit; other swarms are untouched.
- Dragonfly refuses undeclared keys unless a script carries the flag (its docs, "Scripting with
  Lua"); with it the script locks more than its declared keys there, which is the price of the
  keys chosen inside.
"""

from __future__ import annotations

import re

NAMESPACE = "swarmqueue"
_SWARM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SCRIPT_KEY_NAMES = (
    "ready",
    "delayed",
    "claimed",
    "all",
    "failed",
    "counts",
    "seq",
    "clock",
    "events",
)


def check_swarm(name: str) -> str:
    """Return ``name`` if it is a valid swarm name, else raise ``ValueError``.

    ``.`` and ``..`` are refused: the CLI names a directory after the swarm (remembered tokens).
    """
    if not _SWARM_RE.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"invalid swarm name {name[:40]!r}: must be 1-64 letters, digits, '.', '_' or '-'"
            " (not '.' or '..')"
        )
    return name


def slot_guard(key: str) -> str | None:
    """The ``slot-guard`` key of the swarm ``key`` belongs to (None: not a swarm's key)."""
    opening = key.find(":{")
    closing = key.find("}:", opening + 2) if opening > 0 else -1
    if closing < 0:
        return None
    return key[: closing + 2] + "slot-guard"


def host_swarms_key(host: str, namespace: str = NAMESPACE) -> str:
    """The set of swarms with agents registered on ``host`` (outside every swarm's slot)."""
    return f"{namespace}:host:{host}:swarms"


class SwarmKeys:
    """Key names of one swarm."""

    def __init__(self, swarm: str, namespace: str = NAMESPACE) -> None:
        self.swarm = check_swarm(swarm)
        self.namespace = namespace
        self.prefix = f"{namespace}:{{{swarm}}}:"

    def _key(self, name: str) -> str:
        return self.prefix + name

    ready = property(lambda self: self._key("ready"))
    delayed = property(lambda self: self._key("delayed"))
    claimed = property(lambda self: self._key("claimed"))
    all = property(lambda self: self._key("all"))
    failed = property(lambda self: self._key("failed"))
    counts = property(lambda self: self._key("counts"))
    seq = property(lambda self: self._key("seq"))
    clock = property(lambda self: self._key("clock"))
    events = property(lambda self: self._key("events"))

    resv_all = property(lambda self: self._key("resv:all"))
    resv_exp = property(lambda self: self._key("resv:exp"))

    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}"

    @property
    def channel(self) -> str:
        return self.prefix + "events"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}"

    @property
    def agents(self) -> str:
        return self.prefix + "agents"

    def message(self, message_id: str) -> str:
        return f"{self.prefix}msg:{message_id}"

    def deliveries(self, message_id: str) -> str:
        return f"{self.prefix}deliveries:{message_id}"

    def inbox(self, agent_id: str) -> str:
        return f"{self.prefix}inbox:{agent_id}"

    def rate(self, sender: str) -> str:
        return f"{self.prefix}rate:{sender}"

    @property
    def refused(self) -> str:
        return self.prefix + "refused"

    def outbox(self, host: str) -> str:
        return f"{self.prefix}outbox:{host}"

    @property
    def counters(self) -> str:
        """Hash of what went wrong after a transition committed (announcements, enqueues,
        replication shortfalls); see :mod:`distributor.store.counters`."""
        return self.prefix + "counters"

    @property
    def hosts(self) -> str:
        return self.prefix + "hosts"

    @property
    def acks(self) -> str:
        return self.prefix + "acks"

    @property
    def inbox_read(self) -> str:
        return self.prefix + "inbox_read"

    def thread(self, root_id: str) -> str:
        return f"{self.prefix}thread:{root_id}"

    def delivering(self, message_id: str, host: str) -> str:
        return f"{self.prefix}delivering:{message_id}:{host}"

    def host_swarms(self, host: str) -> str:
        """The set of swarms with agents on ``host`` (no hash tag: plain commands only)."""
        return host_swarms_key(host, self.namespace)

    @property
    def slot_guard(self) -> str:
        """The key no one writes, named last in every script call's ``KEYS`` (see above)."""
        return self.prefix + "slot-guard"

    def script_keys(self) -> list[str]:
        """The fixed keys every Lua script receives, in ``KEYS`` order."""
        return [self.prefix + name for name in SCRIPT_KEY_NAMES]
