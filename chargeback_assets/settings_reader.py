"""A key-path-aware reader for YAML settings.

The app config and every ecosystem's `plugin_settings` are read through `Section`, so that every error names
its key path and the expected type in the same words, unknown keys are rejected at every level (a reader
records which keys it asked for and `finish()` refuses the rest), and a secret's value never reaches an
error message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, TypeVar

from chargeback_assets.validation import ConfigError, Secret

_D = TypeVar("_D")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default that makes a key mandatory."""

_ABSENT: Any = object()

_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "mapping",
    list: "list",
    type(None): "null",
    date: "date",
    datetime: "timestamp",
}
_INTEGER = re.compile(r"[+-]?\d+")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")


def join(path: str, key: str | int) -> str:
    """The key path of `key` under `path`: `a.b`, `a[0]`, or just `key` at the top."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: object, *, reveal: bool = True) -> str:
    """Names the YAML type of a value, with the value itself only for short scalars and only if `reveal`."""
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    if not reveal or isinstance(value, (Mapping, list, tuple)) or value is None:
        return kind
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def defaults(cls: type) -> dict[str, Any]:
    """The field defaults of a dataclass, so parsers and dataclasses share one source of defaults."""
    found: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.default is not dataclasses.MISSING:
            found[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            found[item.name] = item.default_factory()
    return found


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, (float, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


class Section:
    """One YAML mapping being read at a key path.

    Typed getters take the key and a default (`REQUIRED` when the key is mandatory); a YAML null counts as
    absent. Numbers may also be given as strings, because `${VAR}` substitution always yields strings.
    Use it as a context manager (or call `finish()`) to reject the keys nobody asked for.
    """

    def __init__(self, raw: object, path: str, *, label: str | None = None) -> None:
        self.path = path
        self._label = label or path
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(self._label, f"expected a mapping, got {describe(raw)}")
        for key in raw:
            if not isinstance(key, str):
                raise ConfigError(self._label, f"keys must be strings, got {describe(key)} (quote it)")
        self._raw: Mapping[str, Any] = raw
        self._asked: dict[str, None] = {}

    def __enter__(self) -> Section:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish()

    def at(self, key: str | int) -> str:
        return join(self.path, key)

    def __iter__(self) -> Iterator[str]:
        """The keys present, for free-form mappings (tenant names, tags) whose every key the caller reads."""
        return iter(list(self._raw))

    def finish(self) -> None:
        unknown = [key for key in self._raw if key not in self._asked]
        if unknown:
            names = ", ".join(repr(key) for key in unknown)
            allowed = ", ".join(sorted(self._asked)) or "none"
            noun = "key" if len(unknown) == 1 else "keys"
            raise ConfigError(self._label, f"unknown {noun} {names}; allowed keys: {allowed}")

    def _get(self, key: str, default: object) -> Any:
        self._asked[key] = None
        value = self._raw.get(key)
        if value is None:
            if default is REQUIRED:
                raise ConfigError(self.at(key), "required key is missing")
            return _ABSENT
        return value

    def value(self, key: str, default: _D = REQUIRED) -> Any | _D:
        """The raw value, for free-form settings whose shape the caller checks."""
        value = self._get(key, default)
        return default if value is _ABSENT else value

    def string(
        self,
        key: str,
        default: _D = REQUIRED,
        *,
        choices: tuple[str, ...] | None = None,
        ignore_case: bool = False,
        max_length: int | None = None,
    ) -> str | _D:
        value = self._get(key, default)
        if value is _ABSENT:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.at(key), f"expected a string, got {describe(value)}")
        if not value.strip():
            raise ConfigError(self.at(key), "must not be empty")
        if max_length is not None and len(value) > max_length:
            raise ConfigError(self.at(key), f"must be at most {max_length} characters, got {len(value)}")
        if choices is not None:
            wanted = value.upper() if ignore_case else value
            if wanted not in choices:
                raise ConfigError(self.at(key), f"must be one of {'|'.join(choices)}, got {value!r}")
            return wanted
        return value

    def secret(self, key: str, default: _D = REQUIRED) -> Secret | _D:
        """A credential; its errors name the key and the type, never the value."""
        value = self._get(key, default)
        if value is _ABSENT:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.at(key), f"expected a string, got {describe(value, reveal=False)}")
        if not value.strip():
            raise ConfigError(self.at(key), "must not be empty")
        return Secret(value)

    def url(self, key: str, default: _D = REQUIRED) -> str | _D:
        """An http(s) URL, without a trailing slash so clients can append paths."""
        value = self.string(key, default)
        if value is default:
            return default
        assert isinstance(value, str)
        if not _URL.fullmatch(value):
            raise ConfigError(self.at(key), f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    def integer(
        self,
        key: str,
        default: _D = REQUIRED,
        *,
        ge: int | None = None,
        le: int | None = None,
        gt: int | None = None,
    ) -> int | _D:
        value = self._get(key, default)
        if value is _ABSENT:
            return default
        number = _as_int(value)
        if number is None:
            raise ConfigError(self.at(key), f"expected an integer, got {describe(value)}")
        self._check_bounds(key, number, ge, le, gt)
        return number

    def decimal(
        self,
        key: str,
        default: _D = REQUIRED,
        *,
        ge: Decimal | int | None = None,
        le: Decimal | int | None = None,
        gt: Decimal | int | None = None,
    ) -> Decimal | _D:
        """An exact number: floats go through their shortest text form, so 0.7 becomes Decimal('0.7')."""
        value = self._get(key, default)
        if value is _ABSENT:
            return default
        number = _as_decimal(value)
        if number is None:
            raise ConfigError(self.at(key), f"expected a number, got {describe(value)}")
        self._check_bounds(key, number, ge, le, gt)
        return number

    def number(
        self,
        key: str,
        default: _D = REQUIRED,
        *,
        ge: float | None = None,
        le: float | None = None,
        gt: float | None = None,
    ) -> float | _D:
        """A float, for durations and intervals (never for money)."""
        number = self.decimal(key, default, ge=_exact(ge), le=_exact(le), gt=_exact(gt))
        return default if number is default else float(number)  # type: ignore[arg-type]

    def iso_date(self, key: str, default: _D = REQUIRED) -> date | _D:
        value = self._get(key, default)
        if value is _ABSENT:
            return default
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError as error:
                raise ConfigError(self.at(key), f"not a valid date: {error}") from None
        raise ConfigError(self.at(key), f"expected an ISO date (YYYY-MM-DD), got {describe(value)}")

    def section(self, key: str, *, required: bool = False) -> Section:
        """A nested mapping; absent means empty unless `required`."""
        value = self._get(key, REQUIRED if required else None)
        return Section(None if value is _ABSENT else value, self.at(key))

    def optional_section(self, key: str) -> Section | None:
        value = self._get(key, None)
        return None if value is _ABSENT else Section(value, self.at(key))

    def sections(self, key: str) -> list[Section]:
        """A list of mappings, each read at `key[i]`; absent means empty."""
        value = self._get(key, None)
        if value is _ABSENT:
            return []
        if not isinstance(value, list):
            raise ConfigError(self.at(key), f"expected a list, got {describe(value)}")
        return [Section(item, join(self.at(key), index)) for index, item in enumerate(value)]

    def _check_bounds(
        self,
        key: str,
        number: int | Decimal,
        ge: int | Decimal | None,
        le: int | Decimal | None,
        gt: int | Decimal | None,
    ) -> None:
        if ge is not None and le is not None and not ge <= number <= le:
            raise ConfigError(self.at(key), f"must be between {ge} and {le}, got {number}")
        if ge is not None and number < ge:
            raise ConfigError(self.at(key), f"must be at least {ge}, got {number}")
        if le is not None and number > le:
            raise ConfigError(self.at(key), f"must be at most {le}, got {number}")
        if gt is not None and number <= gt:
            raise ConfigError(self.at(key), f"must be greater than {gt}, got {number}")


def _exact(bound: float | None) -> Decimal | None:
    return None if bound is None else Decimal(str(bound))


def reject_duplicates(found: Iterable[tuple[str, str]], what: str) -> None:
    """Rejects a value given twice; `found` is (key path, value) pairs, and the error names both paths."""
    first: dict[str, str] = {}
    for path, value in found:
        if value in first:
            raise ConfigError(path, f"duplicate {what} {value!r}, already used at {first[value]}")
        first[value] = path


def require_exactly(section: Section, given: Mapping[str, object], *, wanted: bool, condition: str) -> None:
    """Keys that only mean something under one setting: each is required when `wanted`, refused otherwise."""
    for name, value in given.items():
        if wanted and value is None:
            raise ConfigError(section.at(name), f"required when {condition}")
        if not wanted and value is not None:
            raise ConfigError(section.at(name), f"not allowed when {condition}")
