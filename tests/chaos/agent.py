"""One agent of the chaos suite, as a process: claim, work a moment, complete and claim the next.

Run as ``python tests/chaos/agent.py URL SWARM AGENT ACKS [options]``. It drives the swarm
through the Python API (``--via api``, ``TaskQueue``) or through the real CLI (``--via cli``,
one ``swarmqueue`` process per step, as an agent in a pane would), until every task of the
swarm is completed; then it prints one JSON line of counts and exits 0.

Every state-changing call carries a request id of the agent's own, and a call that fails because
Redis is unreachable (a killed server, a dropped reply the client's own retries could not
recover) is sent again with the same id until it gets an answer, so it is applied once.

After each completion the process appends ``<task id> <token>`` to the ``ACKS`` file: the
side effect of a finished task, counted by the suite's invariants (a task acknowledged twice
was completed twice, as far as the agents can tell).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from distributor import StaleClaim, TaskQueue
from distributor.errors import RedisUnavailable

T = TypeVar("T")
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3
EXIT_GAVE_UP = 2
CLI = Path(sys.executable).with_name("swarmqueue")


class GaveUp(Exception):
    """The deadline passed (the suite then reports the swarm as stuck)."""


@dataclass
class Counts:
    """What the agent did: printed as its last line."""

    agent: str
    claims: int = 0
    completions: int = 0
    stale: int = 0  # completions refused: the claim had expired and was taken over
    retries: int = 0  # calls sent again (same request id) after Redis was unreachable
    polls: int = 0  # claim attempts that found nothing ready


@dataclass(frozen=True)
class Held:
    task_id: str
    token: int


class Agent:
    """The loop, over one of two ways of talking to the swarm (see :class:`Api`, :class:`Cli`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counts = Counts(args.agent)
        self.rng = random.Random(args.seed)
        self.deadline = time.monotonic() + args.deadline
        self._seq = 0
        self._acks = os.open(args.acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def request_id(self) -> str:
        """A fresh id for one logical request (kept across its retries)."""
        self._seq += 1
        return f"{self.args.agent}-{self._seq}"

    def persist(self, call: Callable[[], T]) -> T:
        """``call()`` until Redis answers (or the deadline passes)."""
        while True:
            try:
                return call()
            except RedisUnavailable:
                if time.monotonic() > self.deadline:
                    raise GaveUp("Redis stayed unreachable") from None
                self.counts.retries += 1
                time.sleep(self.rng.uniform(0.05, 0.3))

    def ack(self, held: Held) -> None:
        os.write(self._acks, f"{held.task_id} {held.token}\n".encode())  # one write: atomic

    def run(self, swarm: Swarm) -> None:
        held: Held | None = None
        while True:
            if time.monotonic() > self.deadline:
                raise GaveUp("deadline passed")
            if held is None:
                rid = self.request_id()
                held = self.persist(partial(swarm.claim_next, rid))
                if held is None:
                    self.counts.polls += 1
                    if self.persist(swarm.all_completed):
                        return
                    time.sleep(self.rng.uniform(0.02, 0.1))
                    continue
                self.counts.claims += 1
            time.sleep(self.rng.uniform(self.args.work_min, self.args.work_max))  # "the work"
            rid = self.request_id()
            finished = held
            try:
                held = self.persist(partial(swarm.complete, finished, rid))
            except StaleClaim:
                self.counts.stale += 1
                held = None
                continue
            self.counts.completions += 1
            self.ack(finished)
            if held is not None:
                self.counts.claims += 1


class Swarm(Protocol):
    """How an agent talks to its swarm."""

    def claim_next(self, request_id: str) -> Held | None: ...

    def complete(self, held: Held, request_id: str) -> Held | None:
        """Complete ``held`` and claim the next task in the same step (None: none ready)."""
        ...

    def all_completed(self) -> bool: ...


class Api:
    """``TaskQueue`` from the Python API, connected as users do (``from_url``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.queue = TaskQueue.from_url(args.url, args.swarm)
        self.agent = args.agent
        self.lease = args.lease

    def claim_next(self, request_id: str) -> Held | None:
        claim = self.queue.claim_next(self.agent, lease=self.lease, request_id=request_id)
        return Held(claim.task.id, claim.token) if claim else None

    def complete(self, held: Held, request_id: str) -> Held | None:
        done = self.queue.complete(
            held.task_id,
            self.agent,
            held.token,
            claim_next=True,
            lease=self.lease,
            request_id=request_id,
        )
        return Held(done.next.task.id, done.next.token) if done.next else None

    def all_completed(self) -> bool:
        progress = self.queue.progress()
        return bool(progress["completed"] == progress["total"])


class Cli:
    """The ``swarmqueue`` command, one process per step; exit 3 (Redis unreachable) is retried
    with the same ``--request-id``, exit 1 on ``done`` is a stale claim."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.base = [str(CLI), "--redis-url", args.url, "--swarm", args.swarm]
        self.agent = args.agent
        self.lease = str(args.lease)

    def _run(self, *args: str) -> tuple[int, Any]:
        done = subprocess.run(
            [*self.base, *args, "--json"], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode == EXIT_UNREACHABLE:
            raise RedisUnavailable(done.stderr.strip())
        if done.returncode not in (0, EXIT_REFUSED):
            raise RuntimeError(f"swarmqueue {args[0]} exited {done.returncode}: {done.stderr}")
        return done.returncode, json.loads(done.stdout) if done.returncode == 0 else None

    def claim_next(self, request_id: str) -> Held | None:
        code, out = self._run(
            "next", "--agent", self.agent, "--lease", self.lease, "--request-id", request_id
        )
        return Held(out["id"], out["token"]) if code == 0 else None

    def complete(self, held: Held, request_id: str) -> Held | None:
        code, out = self._run(
            "done", held.task_id, "--agent", self.agent, "--token", str(held.token), "--next",
            "--lease", self.lease, "--request-id", request_id,
        )  # fmt: skip
        if code == EXIT_REFUSED:
            raise StaleClaim(held.task_id, "refused by the CLI")
        taken = out["next"]
        return Held(taken["id"], taken["token"]) if taken else None

    def all_completed(self) -> bool:
        _, out = self._run("status")
        return bool(out["completed"] == out["total"])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("swarm")
    parser.add_argument("agent")
    parser.add_argument("acks", help="file to append '<task id> <token>' to per completion")
    parser.add_argument("--via", choices=("api", "cli"), default="api")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--work-min", type=float, default=0.01)
    parser.add_argument("--work-max", type=float, default=0.05)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds before giving up")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    agent = Agent(args)
    swarm: Swarm = Api(args) if args.via == "api" else Cli(args)
    code = 0
    try:
        agent.run(swarm)
    except GaveUp as exc:
        print(f"agent {args.agent} gave up: {exc}", file=sys.stderr)
        code = EXIT_GAVE_UP
    print(json.dumps(asdict(agent.counts)), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
