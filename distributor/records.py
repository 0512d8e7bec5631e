"""Replies as plain records: what Redis holds, read back without validating it again.

What enters the queue is validated by pydantic models at the boundary
(:mod:`distributor.tasks.specs`, :mod:`distributor.reservations.requests`). What comes back
was written by our own scripts, so it is held in :class:`Record` objects: an agent's command
does not import pydantic, and the hot path builds a task without a validator
(docs/benchmarks.md). They keep pydantic's ``model_dump``, so replies serialise the way the
rest of the API does.

A record class is declared like a frozen, keyword-only dataclass (type checkers treat it as
one), but defining it costs no generated code: ``@dataclass`` compiles five methods per class,
~0.6 ms each class at every CLI start; these share one generic set.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal, Self, TypeVar, dataclass_transform

T = TypeVar("T")
R = TypeVar("R", bound="Record")


class _Factory:
    """A default made fresh for each record (a list, a dict), as ``field(default_factory=)``."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is made by ``default_factory`` for each record."""
    return _Factory(default_factory)  # type: ignore[return-value]


_MISSING = object()


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Record:
    """Base of the reply records: keyword construction, immutable, compared by value,
    ``model_dump`` as pydantic's."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _dumped_as: ClassVar[dict[str, str]] = {}  # a field dumped under another key (an alias)

    def __init_subclass__(cls) -> None:
        """The fields are the class's own annotations, in order (``ClassVar`` ones excepted);
        a class attribute of the same name is its default."""
        super().__init_subclass__()
        names = tuple(
            name
            for name, note in inspect.get_annotations(cls).items()
            if not str(note).startswith(("ClassVar", "typing.ClassVar"))
        )
        cls._fields = names
        cls._defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        for name, default in cls._defaults.items():
            if isinstance(default, _Factory):
                delattr(cls, name)  # the factory is no value: reading it must not see it

    def __init__(self, **values: Any) -> None:
        data = {}
        for name in self._fields:
            value = values.pop(name, _MISSING)
            if value is _MISSING:
                value = self._defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{type(self).__name__} needs {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            data[name] = value
        if values:
            raise TypeError(f"{type(self).__name__} has no field {next(iter(values))!r}")
        object.__setattr__(self, "__dict__", data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({shown})"

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", exclude: Collection[str] = ()
    ) -> dict[str, Any]:
        """The fields as a dict, nested records too; ``mode="json"`` gives JSON values
        (datetimes as ISO 8601 with ``Z`` for UTC, enums as their values), as pydantic does."""
        as_json = mode == "json"
        alias = self._dumped_as
        return {
            alias.get(k, k): _dumped(v, as_json)
            for k, v in self.__dict__.items()
            if k not in exclude
        }

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with the fields in ``update`` replaced (not checked, as pydantic's)."""
        return built(type(self), {**self.__dict__, **(update or {})})


def built(cls: type[R], values: dict[str, Any]) -> R:
    """``cls(**values)`` for ``values`` that name every field of ``cls`` in declaration order,
    unchecked: the dict becomes the record's (what the hot path builds replies with;
    tests/test_hot_path.py checks the two agree)."""
    record = object.__new__(cls)
    object.__setattr__(record, "__dict__", values)
    return record


def _dumped(value: Any, as_json: bool) -> Any:
    if isinstance(value, Record):
        return value.model_dump(mode="json" if as_json else "python")
    if isinstance(value, list | tuple):
        return [_dumped(v, as_json) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v, as_json) for k, v in value.items()}
    if as_json:
        if isinstance(value, datetime):
            text = value.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        if isinstance(value, Enum):
            return value.value
    return value
