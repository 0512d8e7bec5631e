"""Typed settings without pydantic-settings: the machinery behind ``Settings``.

Each setting is declared once, as an annotated class attribute whose value is :func:`setting`
(default, bounds, a check, a description). A subclass of :class:`SettingsBase` is a frozen,
keyword-only record that type checkers see as a dataclass; constructing one reads its values,
highest first, from the keyword arguments, the environment (``<prefix><NAME>``, any case) and
the values its ``file_values`` hook returns, then each field's default.

Why not pydantic-settings: importing it and building its model costs ~140 ms, as much as a CLI
command's whole work (docs/benchmarks.md, CLI start-up); this module imports nothing heavier
than :mod:`typing`. The pydantic names callers used are kept (``model_copy(update=...)``,
``model_fields``, ``model_fields_set``), so no caller had to change.

Values are converted like pydantic's lax mode: strings (the environment) become numbers and
booleans (``1/0, true/false, yes/no, on/off``); a list comes from the environment as a JSON
array or comma-separated; ``""`` is unset for an optional setting. A bad value raises
:class:`~distributor.errors.InvalidSetting` naming the setting, never quoting the value.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, dataclass_transform, get_args, get_origin

from distributor.errors import InvalidSetting

Check = Callable[[Any, Mapping[str, Any]], Any]
_MISSING: Any = object()
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class Setting:
    """One setting's declaration: default (or factory), bounds, an extra check, description.

    ``check(value, earlier)`` gets the converted value and the settings declared before it; it
    returns the value to keep or raises ``ValueError`` with the reason.
    """

    __slots__ = ("check", "default", "default_factory", "description", "ge", "gt", "le")

    def __init__(
        self,
        default: Any,
        default_factory: Callable[[], Any] | None,
        gt: float | None,
        ge: float | None,
        le: float | None,
        check: Check | None,
        description: str,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.gt, self.ge, self.le = gt, ge, le
        self.check = check
        self.description = description

    def make_default(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def setting(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    check: Check | None = None,
    description: str = "",
) -> Any:
    """Declare a setting (its value on an instance is of the annotated type)."""
    return Setting(default, default_factory, gt, ge, le, check, description)


def _bad(name: str, message: str) -> InvalidSetting:
    return InvalidSetting(name, message)


def _number(name: str, value: Any, kind: type[int] | type[float]) -> int | float:
    """``value`` as an int or float (``kind``), refusing booleans, and fractions for an int."""
    what = "number" if kind is float else "integer"
    number: int | float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(name, f"Input should be a valid {what}")
    if isinstance(value, str):
        try:
            number = int(value) if kind is int else float(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise _bad(name, f"Input should be a valid {what}") from None
    else:
        number = value
    if kind is float:
        return float(number)
    if isinstance(number, float) and not number.is_integer():
        raise _bad(name, "Input should be a valid integer, got a number with a fractional part")
    return int(number)


def _convert(name: str, kind: Any, value: Any) -> Any:
    """``value`` (a string from the environment or a Python/TOML value) as type ``kind``."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "":
            return None
        (kind,) = [a for a in args if a is not type(None)]
        origin, args = get_origin(kind), get_args(kind)
    if origin is Literal:
        if value in args:
            return value
        choices = " or ".join(repr(a) for a in args)
        raise _bad(name, f"Input should be {choices}")
    if origin is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise _bad(name, "Input should be a valid JSON array") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise _bad(name, "Input should be a valid list")
        return [_convert(f"{name}.{i}", args[0], item) for i, item in enumerate(value)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _bad(name, "Input should be a valid boolean")
    if kind in (int, float):
        return _number(name, value, kind)
    if kind is str:
        if isinstance(value, str):
            return value
        raise _bad(name, "Input should be a valid string")
    raise TypeError(f"setting {name}: unsupported type {kind!r}")


def _bounded(name: str, spec: Setting, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.gt is not None and not value > spec.gt:
            raise _bad(name, f"Input should be greater than {spec.gt}")
        if spec.ge is not None and not value >= spec.ge:
            raise _bad(name, f"Input should be greater than or equal to {spec.ge}")
        if spec.le is not None and not value <= spec.le:
            raise _bad(name, f"Input should be less than or equal to {spec.le}")
    return value


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class SettingsBase:
    """Base of a frozen settings record; subclasses declare fields with :func:`setting`."""

    env_prefix: ClassVar[str] = ""
    model_fields: ClassVar[dict[str, Setting]]
    _types: ClassVar[dict[str, Any] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {k: v for k, v in vars(cls).items() if isinstance(v, Setting)}
        cls.model_fields = {**getattr(cls, "model_fields", {}), **own}
        cls._types = None  # resolved on first use (annotations are strings until then)

    @classmethod
    def file_values(cls) -> dict[str, Any]:
        """Values below the environment (a config file); none by default."""
        return {}

    @classmethod
    def _field_types(cls) -> dict[str, Any]:
        if cls._types is None:
            hints = typing.get_type_hints(cls)
            cls._types = {name: hints[name] for name in cls.model_fields}
        return cls._types

    def __init__(self, **given: Any) -> None:
        fields = type(self).model_fields
        unknown = [k for k in given if k not in fields]
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword {unknown[0]!r}")
        prefix = type(self).env_prefix.upper()
        env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(prefix)}
        values = dict(type(self).file_values())
        for name in fields:
            if prefix + name.upper() in env:
                values[name] = env[prefix + name.upper()]
        values.update(given)
        self._fill(values)

    def _fill(self, values: Mapping[str, Any]) -> None:
        """Convert, bound and check ``values`` (defaults for the rest), in declaration order."""
        kinds = self._field_types()
        done: dict[str, Any] = {}
        for name, spec in type(self).model_fields.items():
            if name in values:
                value = _bounded(name, spec, _convert(name, kinds[name], values[name]))
            else:
                value = spec.make_default()
            if spec.check is not None:
                try:
                    value = spec.check(value, done)
                except ValueError as exc:
                    raise _bad(name, str(exc)) from None
            done[name] = value
        self.__dict__.update(done)
        self.__dict__["_given"] = frozenset(values)

    @property
    def model_fields_set(self) -> frozenset[str]:
        """The settings given (keywords, environment, file), not left at their default."""
        given: frozenset[str] = self.__dict__["_given"]
        return given

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> typing.Self:
        """A copy with ``update`` applied (converted and checked; environment not re-read)."""
        unknown = [k for k in update or {} if k not in self.model_fields]
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {unknown[0]!r}")
        copy = object.__new__(type(self))
        current = {name: self.__dict__[name] for name in self.model_fields}
        copy._fill({**current, **(update or {})})
        copy.__dict__["_given"] = self.model_fields_set | set(update or {})
        return copy

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use model_copy(update=...)")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(self.__dict__[n] == other.__dict__[n] for n in self.model_fields)

    __hash__ = None  # type: ignore[assignment]  # holds lists: not hashable, as pydantic's

    def __repr__(self) -> str:
        """The settings given (not the defaults); URLs without their password."""
        shown = []
        for name in sorted(self.model_fields_set):
            value = self.__dict__[name]
            if isinstance(value, str) and "@" in value and "://" in value:
                scheme, _, rest = value.partition("://")
                value = f"{scheme}://***@{rest.rpartition('@')[2]}"
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
