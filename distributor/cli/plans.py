"""``swarmqueue plan ...``: submit a plan of tasks from a JSON or YAML file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.cli.output import emit, json_option

MAX_PLAN_FILE_BYTES = 64 * 1024 * 1024


@click.group("plan")
def plan_group() -> None:
    """Submit and inspect plans (sets of tasks with dependencies)."""


def read_plan_file(path: str) -> Any:
    """The parsed content of a JSON or YAML plan file ('-' reads stdin)."""
    try:
        if path == "-":
            raw = sys.stdin.read(MAX_PLAN_FILE_BYTES + 1)
        else:
            file = Path(path)
            if file.stat().st_size > MAX_PLAN_FILE_BYTES:
                raise CliError(f"{path}: larger than {MAX_PLAN_FILE_BYTES} bytes", EXIT_INVALID)
            raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_INVALID) from None
    try:
        data = json.loads(raw) if raw.lstrip().startswith(("{", "[")) else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CliError(
            f"{path}: not valid JSON or YAML ({exc})".replace("\n", " "), EXIT_INVALID
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise CliError(f"{path}: expected a top-level 'tasks' list", EXIT_INVALID)
    return data


@plan_group.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--request-id", help="Idempotency key: resubmitting with it changes nothing.")
@json_option
@click.pass_obj
def submit(obj: CliContext, file: str, request_id: str | None, as_json: bool) -> None:
    """Submit FILE (JSON or YAML with a top-level `tasks` list), all or nothing."""
    ids = obj.queue.submit(read_plan_file(file), request_id=request_id)
    emit(
        as_json,
        {"submitted": ids},
        f"submitted {len(ids)} task(s): {', '.join(ids[:20])}" + (" ..." if len(ids) > 20 else ""),
    )
