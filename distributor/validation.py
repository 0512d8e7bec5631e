"""pydantic's validation errors as ours: one line naming the first bad field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from distributor.errors import ValidationError

M = TypeVar("M", bound=BaseModel)

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def single_line(value: str) -> str:
    """A field check: ``value`` holds no control character (no line break either)."""
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


def validation_error(exc: PydanticValidationError) -> ValidationError:
    """Our :class:`ValidationError` naming pydantic's first bad field (and how many more)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ValidationError(f"{where}: {msg}{more}" if where else f"{msg}{more}")


def validated_as(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``; our ``ValidationError`` when it is not."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise validation_error(exc) from None
