"""How commands print data: human lines or ``--json``, always on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def to_jsonable(value: Any) -> Any:
    """Models (anything with pydantic's ``model_dump``, so lean reply types too) and datetimes
    as plain JSON values; duck-typed, so printing does not import pydantic."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def emit(as_json: bool, data: Any, lines: Iterable[str] | str) -> None:
    """Print ``data`` as JSON, or the human ``lines``."""
    if as_json:
        click.echo(json.dumps(to_jsonable(data), sort_keys=True))
        return
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(line)


def when(value: datetime | None) -> str:
    """A timestamp as shown to people: UTC, second precision."""
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"
