"""The lifecycle loop run on an older swarmqueue (``scripts/bench.py --baseline DIR``).

``DIR`` is a checkout of another version (e.g. ``git worktree add /tmp/before main``). Its agents
run this benchmark's own loop (:func:`benchmarks.lifecycle.run_swarmqueue`) in a child process
whose ``distributor`` is imported from ``DIR`` (first on ``PYTHONPATH``; ``DIR/.venv``'s
python when it has one), so before and after are timed by the same code, in one run, taking
turns with the other systems. The child prints its :class:`~benchmarks.procs.GroupRun` as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.procs import GroupRun

SCRIPTS = Path(__file__).resolve().parent.parent  # holds the `benchmarks` package

Runner = Callable[[str, int, int, int, float], GroupRun]


def check_dir(directory: str) -> Path:
    """``directory`` as a path, if it holds a swarmqueue checkout; else ``ValueError``."""
    path = Path(directory).resolve()
    if not (path / "distributor" / "tasks" / "queue.py").is_file():
        raise ValueError(f"{path} is not a swarmqueue checkout (no distributor/tasks/queue.py)")
    return path


def runner(directory: Path) -> Runner:
    """A lifecycle runner that times ``directory``'s swarmqueue."""
    venv_python = directory / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.is_file() else sys.executable

    def run(url: str, count: int, width: int, processes: int, timeout: float) -> GroupRun:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory), str(SCRIPTS)]))
        args = [python, "-m", "benchmarks.baseline", str(directory), url, str(count), str(width),
                str(processes), str(timeout)]  # fmt: skip
        try:
            done = subprocess.run(
                args, cwd=SCRIPTS, env=env, capture_output=True, text=True,
                timeout=timeout + 60, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the baseline run took over {timeout + 60:g}s") from None
        if done.returncode != 0:
            raise RuntimeError(f"the baseline run failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return GroupRun(processes, result["count"], result["ids"], result["seconds"])

    return run


def big_swarm(directory: Path, url: str, total: int, submit: int) -> dict[str, float]:
    """:func:`benchmarks.bigswarm.measure_big` run on ``directory``'s swarmqueue (its
    ``tasks`` and ``plan show`` as that version has them)."""
    venv_python = directory / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.is_file() else sys.executable
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory), str(SCRIPTS)]))
    args = [python, "-m", "benchmarks.baseline", "bigswarm", str(directory), url, str(total),
            str(submit)]  # fmt: skip
    done = subprocess.run(args, cwd=SCRIPTS, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the baseline run failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _check_imported_from(directory: str) -> None:
    import distributor  # DIR first on PYTHONPATH: its code

    here = Path(distributor.__file__).resolve()
    if Path(directory) not in here.parents:
        raise SystemExit(f"distributor was imported from {here}, not from {directory}")


def main(argv: list[str]) -> int:
    if argv[0] == "bigswarm":
        directory, url, total, submit = argv[1:]
        _check_imported_from(directory)
        from benchmarks import bigswarm

        print(json.dumps(bigswarm.measure_big(url, int(total), int(submit))))
        return 0
    directory, url, count, width, processes, timeout = argv
    _check_imported_from(directory)
    from benchmarks import lifecycle

    run = lifecycle.run_swarmqueue(url, int(count), int(width), int(processes), float(timeout))
    print(json.dumps({"count": run.count, "ids": run.ids, "seconds": run.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
