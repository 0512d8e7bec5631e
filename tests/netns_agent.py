"""An agent program for a tmux pane of the several-host test (tests/test_hosts.py).

Run as the pane's program (``exec python tests/netns_agent.py --agent b1 --log FILE``), it does
what an agent following the README's loop does, through the ``swarmqueue`` CLI beside this
Python (one process per step, its stdin closed so it never reads the pane's keystrokes):

1. ``agents register --agent ID`` (inside the pane: the pane and socket come from ``$TMUX_PANE``
   and ``$TMUX``, the host from the host's name);
2. ``next --wait`` until a task is ready, a moment of "work", ``done ID --next`` (which claims
   the next task in the same step when one is ready), and again, for as long as it runs (a
   waiting ``next`` costs nothing: it sleeps on pub/sub);
3. all along, a thread reads the pane's input: every line typed into the pane (the messages the
   host's delivery worker types) is logged.

Being a Python program in front of its pane, it is on ``SWARMQUEUE_DELIVER_TO``'s default list,
so messages are typed into it while it works, as into a real agent CLI. It logs one JSON object
per line to ``--log``: ``registered``, ``claimed``, ``completed``, ``error`` (a command that
exited other than expected; the agent then stops working), ``stdin`` (a line typed into the
pane). It never exits by itself: a pane whose program ended would be gone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).with_name("swarmqueue"))
EXIT_REFUSED = 1


class Log:
    """JSON lines appended to one file, from the work loop and the input thread."""

    def __init__(self, path: str, agent: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115  (open for the life of the agent)
        self._lock = threading.Lock()
        self.agent = agent

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "agent": self.agent, "t": time.time(), **fields})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def read_input(log: Log) -> None:
    """Log every line typed into the pane (the tty turns the paste and Enter into a line)."""
    for raw in sys.stdin.buffer:
        log.write("stdin", line=raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def cli(log: Log, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, Any]:
    """Run one ``swarmqueue`` command; its JSON output, or None. Unexpected exits are logged."""
    done = subprocess.run(
        [CLI, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if done.returncode not in ok:
        log.write("error", args=list(args), code=done.returncode, stderr=done.stderr[-2000:])
        return done.returncode, None
    out = done.stdout.strip()
    return done.returncode, json.loads(out) if done.returncode == 0 and out else None


def work(log: Log, agent: str, wait: float, seconds: float) -> None:
    """The agent's loop, until a command exits unexpectedly (logged by :func:`cli`)."""
    claim = None
    while True:
        if claim is None:
            code, claim = cli(log, "next", "--agent", agent, "--wait", f"{wait:g}", "--json",
                              ok=(0, EXIT_REFUSED))  # fmt: skip
            if code == EXIT_REFUSED:  # nothing became ready while it waited
                continue
            if code != 0:
                return
        print(f"{agent}: working on {claim['id']} (token {claim['token']})", flush=True)
        log.write("claimed", task=claim["id"], token=claim["token"])
        time.sleep(seconds)
        # --next without --wait: the next task if one is ready now, else back to `next --wait`
        code, reply = cli(log, "done", claim["id"], "--agent", agent, "--next", "--json")
        if code != 0:
            return
        log.write("completed", task=claim["id"], token=claim["token"])
        claim = reply["next"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds per next --wait")
    parser.add_argument("--work", type=float, default=0.5, help="seconds of 'work' per task")
    args = parser.parse_args()
    log = Log(args.log, args.agent)
    reader = threading.Thread(target=read_input, args=(log,), daemon=True)
    reader.start()
    code, agent = cli(log, "agents", "register", "--agent", args.agent, "--json")
    if code == 0:
        log.write("registered", host=agent["host"], pane=agent["pane"], socket=agent["socket"])
        print(f"{args.agent}: registered at {agent['host']} {agent['pane']}", flush=True)
        work(log, args.agent, args.wait, args.work)
    reader.join()  # until the pane is closed


if __name__ == "__main__":
    main()
