"""CLI start-up: each agent command and the floors timed as whole processes, interleaved.

The floors are ``python -c pass`` and a bare script that imports redis-py, connects and PINGs
(what any Python CLI on redis-py pays). Every round runs each command once, in one order, so a
loaded machine slows all of them alike; the import share is ``python -X importtime``'s total
for ``distributor.cli`` plus the command's module, over the command's p50.

Each checkout's modules are compiled to bytecode first, as ``pip install`` (and
``scripts/lib/setup.sh`` for the editable install) does: otherwise, where
``PYTHONDONTWRITEBYTECODE`` is set, every run would compile the project again, which no
installed CLI does.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

FLOOR = (
    "import sys, redis\n"
    "r = redis.Redis.from_url(sys.argv[1])\n"
    "assert r.ping()\n"
)
BEFORE = " (before)"  # appended to the names of the baseline's commands
IMPORTS = {  # the modules a command needs: what its import share is measured on
    "status": "distributor.cli.tasks",
    "next": "distributor.cli.tasks",
    "claim": "distributor.cli.tasks",
    "heartbeat": "distributor.cli.tasks",
    "done": "distributor.cli.tasks",
    "inbox": "distributor.cli.messages",
    "--help": "",
}


@dataclass(frozen=True)
class Timing:
    """One command's wall times over the runs (ms) and its import time (ms)."""

    name: str
    p50_ms: float
    p90_ms: float
    import_ms: float | None

    @property
    def import_share(self) -> float | None:
        return None if self.import_ms is None else self.import_ms / self.p50_ms


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _import_ms(module: str, python: str = sys.executable) -> float:
    """Cumulative import time of the CLI plus ``module`` (median of 3), from -X importtime,
    with ``python`` (a baseline's own interpreter imports that checkout)."""
    code = "import distributor.cli" + (f"; import {module}" if module else "")
    totals = []
    for _ in range(3):
        err = subprocess.run(
            [python, "-X", "importtime", "-c", code],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
        total = 0
        for line in err.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)", line)
            if m and m.group(2) in ("distributor", "distributor.cli", module):
                total += int(m.group(1))  # top-level entries: their cumulative time
        totals.append(total / 1000)
    return statistics.median(totals)


def compile_bytecode(python: str, root: Path) -> None:
    """Compile a checkout's packages to ``__pycache__`` (what an installed CLI runs from)."""
    packages = [str(root / p) for p in ("distributor", "workers") if (root / p).is_dir()]
    subprocess.run([python, "-m", "compileall", "-q", *packages], check=True,
                   capture_output=True)  # fmt: skip


def _commands(cli: list[str], label: str) -> dict[str, list[str]]:
    """The agent commands run with ``cli``, named with ``label`` appended."""
    return {
        f"next{label}": [*cli, "next", "--agent", "a1"],
        f"claim{label}": [*cli, "claim", "{claim}", "--agent", "a2"],
        f"heartbeat{label}": [*cli, "heartbeat", "--agent", "a1", "{task}"],
        f"done{label}": [*cli, "done", "--agent", "a1", "{task}"],
        f"status{label}": [*cli, "status"],
        f"inbox{label}": [*cli, "inbox", "--agent", "a1"],
        f"--help{label}": [*cli, "--help"],
    }


def measure_cli(url: str, runs: int, baseline: Path | None = None) -> list[Timing]:
    """Time ``runs`` interleaved rounds of each command and the floors on a private swarm;
    with ``baseline`` (an older checkout with its own ``.venv``) its CLI's commands take part
    in every round too, on a swarm of their own, named with " (before)"."""
    swarm = f"clibench{os.getpid()}"
    cli = [os.path.join(os.path.dirname(sys.executable), "swarmqueue")]  # what users run
    clis = {"": (cli, swarm)}
    compile_bytecode(sys.executable, Path(__file__).resolve().parents[2])
    if baseline is not None:
        clis[BEFORE] = ([str(baseline / ".venv" / "bin" / "swarmqueue")], swarm + "b")
        compile_bytecode(str(baseline / ".venv" / "bin" / "python"), baseline)
    with tempfile.TemporaryDirectory() as state:
        plan = os.path.join(state, "plan.json")
        with open(plan, "w") as f:
            tasks = [f'{{"id": "t{i}", "title": "task {i}"}}' for i in range(runs + 5)]
            # claimed by name, never picked by `next` (lower priority than every t task)
            tasks += [f'{{"id": "c{i}", "title": "c {i}", "priority": -1}}' for i in range(runs)]
            f.write(f'{{"tasks": [{",".join(tasks)}]}}')
        envs: dict[str, dict[str, str]] = {}
        for label, (program, name) in clis.items():
            own_state = os.path.join(state, f"state{len(envs)}")  # the CLI's saved tokens
            envs[label] = {**os.environ, "SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_SWARM": name,
                           "SWARMQUEUE_STATE_DIR": own_state}  # fmt: skip
            subprocess.run([*program, "plan", "submit", plan], env=envs[label], check=True,
                           capture_output=True)  # fmt: skip
        commands: dict[str, tuple[list[str], str]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], ""),
            "floor: redis-py PING": ([sys.executable, "-c", FLOOR, url], ""),
        }
        for label, (program, _) in clis.items():
            commands.update({k: (v, label) for k, v in _commands(program, label).items()})
        times: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(runs):
            for name, (template, label) in commands.items():
                argv = [a.replace("{task}", f"t{i}").replace("{claim}", f"c{i}") for a in template]
                start = time.perf_counter()
                subprocess.run(argv, env=envs[label], check=True, capture_output=True)
                times[name].append((time.perf_counter() - start) * 1000)
        r = redis.Redis.from_url(url)
        for _, name in clis.values():
            for key in r.scan_iter(f"*{name}*", count=1000):
                r.delete(key)
    pythons = {"": sys.executable}
    if baseline is not None:
        pythons[BEFORE] = str(baseline / ".venv" / "bin" / "python")
    timings = []
    for name, t in times.items():
        label = BEFORE if name.endswith(BEFORE) else ""
        command = name.removesuffix(BEFORE) if label else name
        imports = _import_ms(IMPORTS[command], pythons[label]) if command in IMPORTS else None
        timings.append(Timing(name, statistics.median(t), _pct(t, 0.9), imports))
    return timings
