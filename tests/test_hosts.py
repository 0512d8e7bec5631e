"""Several hosts, for real: agents on two hosts work one swarm over the network.

Three hosts made of Linux namespaces (``tests/netns_hosts.py``: each its own network namespace
on a bridge, its own host name and its own private folder for tmux sockets):

- host A runs Redis, bound to A's address with a password (protected mode stays on, as the
  README's multi-host section asks); the test's operator commands (``plan submit``,
  ``broadcast``, ``deliveries``, ``events``) run there, through the CLI;
- hosts B and C each run their own tmux server (the same ``-L`` name, so the same socket path,
  and the same pane ids ``%0 %1 %2``: only the host tells them apart) with three agent panes,
  and their own ``swarmqueue worker``. Every command on B and C reaches Redis over the lab's
  network (``SWARMQUEUE_REDIS_URL=redis://:PASSWORD@<A's address>:16379/0``), and each host
  keeps its agents' tokens in a state folder of its own.

Each pane runs ``tests/netns_agent.py``, one program for both roles of an agent's pane: it
works the swarm through the CLI as the README's agent loop does (``agents register``, ``next
--wait``, ``done --next``) and logs every line typed into its pane. It is a Python program in
front of the pane, so the delivery worker types messages into it (a shell would get nothing),
while it works, as into a real agent CLI; its log tells exactly what arrived, and the pane's
contents (captured on its own host) show it too.

Checked, in one run (the hosts take a few seconds to build, so the steps share them):

1. every task done once, each claimed only after its dependencies were completed (the
   swarm's event log), by agents of both hosts;
2. a broadcast reaches all six panes once, each typed by its own host's worker: the recorded
   outcome names the pane's host, the RQ job of that host's delivery ran in that worker
   process, no worker log shows a delivery for the other host, and each pane got it once;
3. with C's worker stopped, C's recipients stay ``pending`` (and their panes get nothing) while
   B's are delivered; restarted, C's worker delivers them once, and B's panes get no second copy;
4. B's cable is unplugged (the bridge port down) while B holds a claim with a 5 s lease: the
   lease runs out, C's waiting ``next`` takes the task and completes it; B's ``done`` with its
   old token, started during the cut and retrying, is refused (exit 1, stale) once the cable is
   back; B's worker and B's agents (waiting for work all along) rode through the cut.

Run it with ``./scripts/test.sh -m netns`` (as root; it skips, saying why, where namespaces
cannot be made). ``SWARMQUEUE_TEST_KEEP_LAB=1`` keeps the lab's folder (logs of Redis, the
workers, the agents) for a look after a failure; everything else is removed either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from distributor.messaging.job_ids import delivery_job_id
from distributor.messaging.messages import message_tag
from tests.netns_hosts import Host, Lab, unavailable_reason

T = TypeVar("T")
PYTHON = sys.executable
CLI = str(Path(PYTHON).with_name("swarmqueue"))
AGENT_PROGRAM = str(Path(__file__).with_name("netns_agent.py"))
REDIS_PORT = 16379  # in host A's own network namespace
AGENTS = {"b": ("b1", "b2", "b3"), "c": ("c1", "c2", "c3")}
LEASE_SECONDS = 5.0  # B's claim; C's agent is waiting for work before it runs out
EXIT_REFUSED = 1
# design, then six parts side by side (one per agent), two joins of three parts, then a release
PLAN: dict[str, list[dict[str, Any]]] = {
    "tasks": [
        {"id": "design", "title": "Design the change"},
        *(
            {"id": f"part-{i}", "title": f"Part {i}", "dependencies": ["design"]}
            for i in range(1, 7)
        ),
        {"id": "join-1", "title": "Join 1-3", "dependencies": ["part-1", "part-2", "part-3"]},
        {"id": "join-2", "title": "Join 4-6", "dependencies": ["part-4", "part-5", "part-6"]},
        {"id": "release", "title": "Release", "dependencies": ["join-1", "join-2"]},
    ]
}


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.3) -> T:
    """Poll ``check`` until it returns something other than None/False; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


@dataclass
class Rig:
    """The lab's hosts with Redis on A and tmux, agents and a worker on B and C."""

    lab: Lab
    folder: Path
    swarm: str = field(default_factory=lambda: f"hosts-{uuid.uuid4().hex[:8]}")
    tmux_label: str = field(default_factory=lambda: f"sq-{uuid.uuid4().hex[:6]}")
    password: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False)
    redis: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tmux_started: set[str] = field(default_factory=set)
    numbers: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for letter in self.lab.hosts:  # each host's home, state folder and logs
            (self.folder / letter / "state").mkdir(parents=True)

    def host(self, letter: str) -> Host:
        return self.lab.hosts[letter]

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.password}@{self.host('a').address}:{REDIS_PORT}/0"

    def env(self, letter: str) -> dict[str, str]:
        """What a process on the host sees: its own state folder, the lab's Redis URL."""
        home = self.folder / letter
        return {
            "PATH": f"{Path(PYTHON).parent}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMUX_TMPDIR": str(self.lab.private),
            "SWARMQUEUE_REDIS_URL": self.redis_url,
            "SWARMQUEUE_SWARM": self.swarm,
            "SWARMQUEUE_STATE_DIR": str(home / "state"),
            "SWARMQUEUE_LOG_FORMAT": "json",
        }

    # -- commands on hosts ------------------------------------------------------------------

    def cli(
        self, letter: str, *args: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.host(letter), [CLI, *args], self.env(letter), timeout=timeout)

    def cli_json(self, letter: str, *args: str) -> Any:
        """A command's ``--json`` output; the test fails when it exits other than 0."""
        done = self.cli(letter, *args, "--json")
        assert done.returncode == 0, f"swarmqueue {' '.join(args)} on {letter}: {done.stderr}"
        return json.loads(done.stdout)

    def tmux(self, letter: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.host(letter), ["tmux", "-L", self.tmux_label, *args],
                            self.env(letter), timeout=20)  # fmt: skip

    def redis_cli(self, letter: str, *args: str) -> str:
        a = self.host("a")
        done = self.lab.run(self.host(letter),
                            ["redis-cli", "-h", a.address, "-p", str(REDIS_PORT), "--raw",
                             "--no-auth-warning", "-a", self.password, *args],
                            self.env(letter), timeout=10)  # fmt: skip
        return done.stdout.strip()

    def answers(self, letter: str) -> bool:
        return self.redis_cli(letter, "PING") == "PONG"

    # -- starting and stopping --------------------------------------------------------------

    def start_redis(self) -> None:
        a = self.host("a")
        data = self.folder / "a" / "redis"
        data.mkdir()
        self.redis = self.lab.start(
            a,
            ["redis-server", "--bind", a.address, "--port", str(REDIS_PORT), "--save", "",
             "--appendonly", "no", "--dir", str(data), "--requirepass", self.password],
            self.env("a"),
            self.folder / "a" / "redis.log",
        )  # fmt: skip
        for letter in "bc":  # reached from the agent hosts, over the bridge
            wait_for(partial(self.answers, letter), 15, f"Redis on {a.address} from {letter}")

    def start_agents(self, letter: str) -> None:
        """The host's tmux server, one window per agent running the agent program."""
        for i, agent in enumerate(AGENTS[letter]):
            program = (f"exec {PYTHON} {AGENT_PROGRAM} --agent {agent} "
                       f"--log {self.agent_log_path(agent)}")  # fmt: skip
            if i == 0:
                args = ["new-session", "-d", "-s", "agents", "-x", "200", "-y", "50"]
            else:
                args = ["new-window", "-t", "agents"]
            done = self.tmux(letter, *args, "-n", agent, program)
            assert done.returncode == 0, f"tmux on {letter}: {done.stderr}"
            self.tmux_started.add(letter)

    def start_worker(self, letter: str) -> subprocess.Popen[bytes]:
        log = self.folder / letter / "worker.log"
        self.workers[letter] = self.lab.start(
            self.host(letter), [CLI, "worker"], self.env(letter), log
        )
        return self.workers[letter]

    def stop_worker(self, letter: str, check: bool = True) -> None:
        """SIGTERM, as an operator stops it; it finishes its job and unregisters (``check``:
        and exits 0). One that does not stop is left to the lab's cleanup (and reported)."""
        worker = self.workers.pop(letter)
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0 or not check, f"worker on {letter}: {code}"

    def stop(self) -> None:
        """Stop what runs on the hosts, the way each is meant to be stopped."""
        for letter in sorted(self.tmux_started):
            self.tmux(letter, "kill-server")
        for letter in list(self.workers):
            self.stop_worker(letter, check=False)  # a failed test may have left it cut off
        if self.redis is not None:
            self.redis.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.redis.wait(timeout=20)

    # -- what the agents saw ----------------------------------------------------------------

    def agent_log_path(self, agent: str) -> Path:
        return self.folder / f"{agent}.jsonl"

    def agent_log(self, agent: str) -> list[dict[str, Any]]:
        path = self.agent_log_path(agent)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def typed_lines(self, agent: str, needle: str) -> list[str]:
        """Lines typed into the agent's pane that contain ``needle``."""
        return [e["line"] for e in self.agent_log(agent)
                if e["kind"] == "stdin" and needle in e["line"]]  # fmt: skip

    def agent_errors(self) -> list[dict[str, Any]]:
        return [e for a in all_agents() for e in self.agent_log(a) if e["kind"] == "error"]

    def pane_text(self, letter: str, pane: str) -> str:
        done = self.tmux(letter, "capture-pane", "-p", "-J", "-S", "-5000", "-t", pane)
        assert done.returncode == 0, f"capture-pane {pane} on {letter}: {done.stderr}"
        return done.stdout

    def worker_deliveries(self, letter: str) -> list[dict[str, Any]]:
        """The ``delivery done`` log lines of the host's worker(s)."""
        lines = (self.folder / letter / "worker.log").read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if e.get("event") == "delivery done"]

    def job_worker(self, message_id: str, letter: str) -> str:
        """The name of the worker that ran the first delivery job of a message on a host."""
        job = delivery_job_id(message_id, self.host(letter).name)
        return self.redis_cli("a", "HGET", f"rq:job:{job}", "worker_name")


def all_agents() -> list[str]:
    return [agent for agents in AGENTS.values() for agent in agents]


def host_of(agent: str) -> str:
    return agent[0]


@pytest.fixture
def rig() -> Iterator[Rig]:
    """The three hosts, Redis on A, agents and workers on B and C; everything removed after."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="sqh-"))
    lab = Lab(folder)
    left: list[str] = []
    try:
        started = time.monotonic()
        lab.build("abc")
        rig = Rig(lab, folder)
        rig.start_redis()
        for letter in "bc":
            rig.start_worker(letter)
            rig.start_agents(letter)
        rig.numbers["setup_s"] = time.monotonic() - started
        yield rig
        rig.stop()
        left = lab.leftovers()
    finally:
        lab.close()
        namespaces = lab.namespaces_left()
        if os.environ.get("SWARMQUEUE_TEST_KEEP_LAB") != "1":
            shutil.rmtree(folder, ignore_errors=True)
    assert not namespaces, f"namespaces left behind: {namespaces}"
    assert not left, f"left running in the lab (killed now): {left}"


# -- the steps ------------------------------------------------------------------------------


def agents_register(rig: Rig) -> dict[str, dict[str, Any]]:
    """Every agent registered itself from its pane, under its own host's name."""

    def registered() -> dict[str, dict[str, Any]] | None:
        assert not rig.agent_errors(), rig.agent_errors()
        found = {a: e for a in all_agents() for e in rig.agent_log(a) if e["kind"] == "registered"}
        return found if len(found) == len(all_agents()) else None

    found = wait_for(registered, 60, "the six agents to register")
    machine = socket.gethostname()
    for agent, entry in found.items():
        host = rig.host(host_of(agent))
        assert entry["host"] == host.name != machine, entry  # the UTS name, not the machine's
    listed = {a["id"]: a for a in rig.cli_json("a", "agents", "list")}
    assert {a: (listed[a]["host"], listed[a]["pane"]) for a in all_agents()} == {
        a: (rig.host(host_of(a)).name, found[a]["pane"]) for a in all_agents()
    }
    # the two hosts' panes share socket path and pane ids: only the host tells them apart
    assert listed["b1"]["socket"] == listed["c1"]["socket"]
    assert {found[a]["pane"] for a in AGENTS["b"]} == {found[a]["pane"] for a in AGENTS["c"]}
    return found


def work_the_swarm(rig: Rig) -> None:
    """Submit the plan on A; the agents on B and C do it all, each task once, in order."""
    plan = rig.folder / "plan.json"
    plan.write_text(json.dumps(PLAN))
    started = time.monotonic()
    submitted = rig.cli("a", "plan", "submit", str(plan))
    assert submitted.returncode == 0, submitted.stderr

    def completed() -> bool:
        assert not rig.agent_errors(), rig.agent_errors()
        done = {e["task"] for a in all_agents() for e in rig.agent_log(a)
                if e["kind"] == "completed"}  # fmt: skip
        return len(done) == len(PLAN["tasks"])

    wait_for(completed, 120, "the agents to complete every task")
    rig.numbers["swarm_s"] = time.monotonic() - started
    status = rig.cli_json("a", "status")
    assert status["completed"] == status["total"] == len(PLAN["tasks"])

    events = [json.loads(line) for line in rig.cli("a", "events", "--json").stdout.splitlines()]
    order = [(e["type"], e["task_id"], e.get("agent_id")) for e in events]
    completions = [(task, agent) for kind, task, agent in order if kind == "completed"]
    assert sorted(t for t, _ in completions) == sorted(t["id"] for t in PLAN["tasks"])  # once each
    position = {task: i for i, (kind, task, _) in enumerate(order) if kind == "completed"}
    for task in PLAN["tasks"]:
        claims = [i for i, (kind, t, _) in enumerate(order)
                  if kind == "claimed" and t == task["id"]]  # fmt: skip
        assert claims, f"{task['id']} was never claimed"
        for dependency in task.get("dependencies", []):
            assert position[dependency] < min(claims), f"{task['id']} claimed before {dependency}"
    # the agents' own accounts agree: each task completed by exactly one agent, on B or C
    done_by = {e["task"]: a for a in all_agents() for e in rig.agent_log(a)
               if e["kind"] == "completed"}  # fmt: skip
    assert dict(completions) == done_by
    assert {host_of(a) for a in done_by.values()} == {"b", "c"}, done_by


def broadcast(rig: Rig, text: str) -> str:
    sent = rig.cli_json("a", "broadcast", text, "--sender", "operator")
    return str(sent["message_id"])


def outcomes(rig: Rig, message_id: str) -> dict[str, dict[str, Any]]:
    return {d["agent_id"]: d for d in rig.cli_json("a", "deliveries", message_id)["deliveries"]}


def delivered_to(rig: Rig, message_id: str, agents: list[str]) -> dict[str, dict[str, Any]] | None:
    """The outcomes once ``agents`` all got the message and it is recorded, else None."""
    tag = message_tag(message_id)
    if not all(rig.typed_lines(a, tag) for a in agents):  # the panes first: no Redis round trip
        return None
    found = outcomes(rig, message_id)
    done = all(found[a]["status"] == "delivered" for a in agents)
    return found if done else None


def check_typed_once_by_own_host(
    rig: Rig, message_id: str, found: dict[str, dict[str, Any]], panes: dict[str, dict[str, Any]]
) -> None:
    """Each recipient's outcome, job, worker log and pane say: its own host's worker typed it,
    once. (A transient failure on a loaded machine, say a tmux timeout, may add an attempt that
    verifies rather than types: the panes' own accounts are what must show one copy.)"""
    tag = message_tag(message_id)
    for agent in all_agents():
        letter = host_of(agent)
        host = rig.host(letter)
        outcome = found[agent]
        assert (outcome["status"], outcome["host"]) == ("delivered", host.name), outcome
        assert len(rig.typed_lines(agent, tag)) == 1, rig.typed_lines(agent, tag)
        assert rig.pane_text(letter, panes[agent]["pane"]).count(tag) == 1
    for letter in "bc":
        worker = rig.workers[letter]
        assert rig.job_worker(message_id, letter).startswith(
            f"swarmqueue-{rig.host(letter).name}-{worker.pid}-"
        )
        runs = [e for e in rig.worker_deliveries(letter) if e["message_id"] == message_id]
        assert {e["host"] for e in runs} == {rig.host(letter).name}
        assert sum(e["delivered"] for e in runs) == len(AGENTS[letter])
        assert all(e["host"] == rig.host(letter).name for e in rig.worker_deliveries(letter))


def broadcast_everywhere(rig: Rig, panes: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    message_id = broadcast(rig, "hello from host A: every pane, once")
    found = wait_for(lambda: delivered_to(rig, message_id, all_agents()), 30,
                     "the broadcast in all six panes")  # fmt: skip
    rig.numbers["broadcast_all_delivered_s"] = time.monotonic() - started
    check_typed_once_by_own_host(rig, message_id, found, panes)


def worker_down_then_up(rig: Rig, panes: dict[str, dict[str, Any]]) -> None:
    """C's worker stopped: B's recipients get the message, C's wait; restarted: once."""
    rig.stop_worker("c")
    message_id = broadcast(rig, "while C's worker is down")
    tag = message_tag(message_id)
    wait_for(lambda: delivered_to(rig, message_id, list(AGENTS["b"])), 30,
             "B's panes to get the message")  # fmt: skip
    time.sleep(3.0)  # more than a sweep interval: nobody else may deliver C's
    found = outcomes(rig, message_id)
    assert {found[a]["status"] for a in AGENTS["c"]} == {"pending"}, found
    assert all(rig.typed_lines(a, tag) == [] for a in AGENTS["c"])
    pending = rig.cli_json("a", "deliveries", "--pending")
    assert [(p["message_id"], p["host"]) for p in pending] == [(message_id, rig.host("c").name)]

    restarted = time.monotonic()
    rig.start_worker("c")
    found = wait_for(lambda: delivered_to(rig, message_id, all_agents()), 30,
                     "C's restarted worker to deliver")  # fmt: skip
    rig.numbers["restarted_worker_delivered_s"] = time.monotonic() - restarted
    check_typed_once_by_own_host(rig, message_id, found, panes)
    assert rig.cli_json("a", "deliveries", "--pending") == []


def cable_cut_while_holding_a_claim(rig: Rig) -> None:
    """B claims, loses its cable, its lease runs out, C takes over; B's old token is refused.

    The task is in a second swarm on the same Redis, so that the six agents waiting for work
    in the first do not race B and C for it.
    """
    swarm = ("--swarm", f"{rig.swarm}-probe")
    probe = rig.folder / "probe.json"
    probe.write_text(json.dumps({"tasks": [{"id": "probe", "title": "Held across a cut"}]}))
    assert rig.cli("a", *swarm, "plan", "submit", str(probe)).returncode == 0
    held = rig.cli_json("b", *swarm, "next", "--agent", "b1", "--lease", f"{LEASE_SECONDS:g}")
    assert held["id"] == "probe"
    # C's agent waits for work meanwhile: told about the lease, it wakes when the lease ends
    waiting = rig.lab.spawn(rig.host("c"), [CLI, *swarm, "next", "--agent", "c1", "--wait", "60",
                                            "--json"], rig.env("c"))  # fmt: skip

    rig.lab.set_link(rig.host("b"), up=False)
    cut = time.monotonic()
    # started during the cut, it keeps trying (a budget well beyond the cut, on a loaded machine)
    patient = {**rig.env("b"), "SWARMQUEUE_RETRY_BUDGET_SECONDS": "60"}
    stale_done = rig.lab.start(rig.host("b"), [CLI, *swarm, "done", "probe", "--agent", "b1"],
                               patient, rig.folder / "b" / "stale-done.log")  # fmt: skip
    out, err = waiting.communicate(timeout=90)
    rig.numbers["cut_to_takeover_s"] = time.monotonic() - cut
    assert waiting.returncode == 0, err
    took = json.loads(out)
    assert (took["id"], took["token"]) == ("probe", held["token"] + 1)
    rig.numbers["lease_end_to_takeover_redis_s"] = _seconds_between(
        held["lease_expires_at"], took["claimed_at"]
    )
    assert rig.cli("c", *swarm, "done", "probe", "--agent", "c1").returncode == 0
    assert stale_done.poll() is None, "B's done got through while its cable was out"

    rig.lab.set_link(rig.host("b"), up=True)
    back = time.monotonic()
    code = stale_done.wait(timeout=120)
    rig.numbers["link_back_to_refusal_s"] = time.monotonic() - back
    said = (rig.folder / "b" / "stale-done.log").read_text().strip()
    assert code == EXIT_REFUSED, said
    assert said.splitlines()[-1].startswith("swarmqueue:") and "stale" in said, said

    shown = rig.cli("a", *swarm, "events", "--json").stdout
    events = [json.loads(line) for line in shown.splitlines()]
    story = [(e["type"], e.get("agent_id")) for e in events if e["task_id"] == "probe"]
    assert [s for s in story if s[0] != "submitted"] == [
        ("claimed", "b1"), ("expired", "b1"), ("claimed", "c1"), ("completed", "c1")
    ], story


def _seconds_between(first: str, second: str) -> float:
    """Seconds from one ISO time (Redis time, as the CLI prints it) to another."""
    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


def worker_rode_through_the_cut(rig: Rig, panes: dict[str, dict[str, Any]]) -> None:
    message_id = broadcast(rig, "after the cable came back")
    found = wait_for(lambda: delivered_to(rig, message_id, all_agents()), 60,
                     "the message after the cut in all six panes")  # fmt: skip
    check_typed_once_by_own_host(rig, message_id, found, panes)
    assert not rig.agent_errors()  # B's agents, waiting for work all along, rode it out too


def test_without_root_or_ip_the_reason_to_skip_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skip names the missing piece (this part runs in the default suite, as any user)."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert unavailable_reason() == "making network namespaces needs root (this runs as uid 1000)"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "ip" else tool)
    assert unavailable_reason() == "no `ip` command here (Debian package iproute2)"


@pytest.mark.netns
@pytest.mark.timeout(300)
def test_agents_on_two_hosts_work_one_swarm_over_the_network(rig: Rig) -> None:
    started = time.monotonic()
    panes = agents_register(rig)
    steps: dict[str, Callable[[], None]] = {
        "swarm": partial(work_the_swarm, rig),
        "broadcast": partial(broadcast_everywhere, rig, panes),
        "worker_down_then_up": partial(worker_down_then_up, rig, panes),
        "cable_cut": partial(cable_cut_while_holding_a_claim, rig),
        "after_the_cut": partial(worker_rode_through_the_cut, rig, panes),
    }
    rig.numbers["step_registered_s"] = time.monotonic() - started
    for name, step in steps.items():
        began = time.monotonic()
        step()
        rig.numbers[f"step_{name}_s"] = time.monotonic() - began
    rig.numbers["test_s"] = time.monotonic() - started
    print("several hosts:", json.dumps({k: round(v, 2) for k, v in rig.numbers.items()}))
