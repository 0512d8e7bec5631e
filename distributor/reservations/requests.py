"""The validated requests that create or free reservations, checked before anything is sent."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from distributor.reservations.patterns import normalise
from distributor.tasks.ids import check_agent_id
from distributor.validation import single_line

MAX_PATTERNS = 100
MAX_REASON = 200
MAX_TTL_SECONDS = 7 * 24 * 3600
FilePattern = Annotated[str, AfterValidator(normalise)]
"""A path, directory or glob as a task's ``files`` and reservations take it, normalised."""


class ReserveRequest(BaseModel):
    """An explicit reservation request, validated before anything is sent."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, AfterValidator(check_agent_id)]
    patterns: Annotated[list[FilePattern], Field(min_length=1, max_length=MAX_PATTERNS)]
    ttl_seconds: Annotated[float, Field(gt=0, le=MAX_TTL_SECONDS)]
    shared: bool = False
    reason: Annotated[str, AfterValidator(single_line), Field(max_length=MAX_REASON)] = ""


class UnreserveRequest(BaseModel):
    """Which explicit reservations of an agent to free (none named: all of them)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, AfterValidator(check_agent_id)]
    patterns: Annotated[list[FilePattern], Field(max_length=MAX_PATTERNS)] = []
