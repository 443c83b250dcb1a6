"""The vocabulary of the settings models: `ConfigError`, `Secret`, the field types, and the error report.

Every section of the config file is a pydantic dataclass made with `@settings`: unknown keys refused, frozen,
each field typed with the annotations below (numbers also accepted as text, since `${VAR}` substitution
yields strings; booleans never taken for numbers). `validate` turns pydantic's errors into one `ConfigError`
holding every problem, each as `key.path: rule` in our own words, never a traceback, and never a value that
is a secret or came from an environment variable. Every secret read (a `Secret`, a password written into a
URL) is also remembered (redaction.py), so that no log line, error message or stored error of the process
shows it in any encoding either.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic import dataclasses as pydantic_dataclasses
from pydantic_core import PydanticCustomError, core_schema

from chargeback_assets.redaction import remember_basic_credentials, remember_secret, scrub

T = TypeVar("T")
Loc = tuple[str | int, ...]

settings = functools.partial(pydantic_dataclasses.dataclass, frozen=True, config=ConfigDict(extra="forbid"))
"""The decorator of every settings model: a frozen pydantic dataclass that refuses unknown keys."""

SECRET_NAMES = ("secret", "password", "token")
"""A key whose name ends in one of these never has its value shown, whatever the error."""


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    rule: str

    def line(self, source: str | None) -> str:
        if not self.path:
            return f"{source or '<config>'}: {self.rule}"
        return f"{source}: {self.path}: {self.rule}" if source else f"{self.path}: {self.rule}"


class ConfigError(ValueError):
    """A configuration broke rules: one line per problem, `path: rule`, after the file name when known.

    `path` and `rule` are those of the first problem; `problems` holds them all.
    """

    def __init__(self, path: str, rule: str, *, source: str | None = None, more: Sequence[Problem] = ()):
        self.problems = (Problem(path, rule), *more)
        self.path, self.rule, self.source = path, rule, source
        super().__init__(scrub("\n".join(problem.line(source) for problem in self.problems)))

    @classmethod
    def of(cls, problems: Sequence[Problem], source: str | None = None) -> ConfigError:
        first, *rest = problems
        return cls(first.path, first.rule, source=source, more=rest)


class Invalid(ValueError):
    """Raised in a validator: `rule` about the key path `at` below the value validated.

    Unless `show` is false, the report adds `, got <value>` when the value is a short scalar it may show;
    `also` names the key path (from the same place) of an earlier, clashing value.
    """

    def __init__(self, rule: str, *at: str | int, also: Loc | None = None, show: bool = True) -> None:
        super().__init__(rule)
        self.rule, self.at, self.also, self.show = rule, at, also, show


_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e\xa0-\xff]")


class Secret:
    """A credential: `str()` and `repr()` are masked; only `reveal()` gives the value, where it is used.

    As a settings field it takes a string, strips surrounding whitespace (a value read with `$(cat file)`
    ends in a newline) and refuses what an HTTP header cannot carry; its errors never show the value.
    Making one remembers the value, so from then on the process masks it wherever it writes text.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: object, handler: object) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, json_schema_input_schema=core_schema.str_schema(min_length=1)
        )

    @classmethod
    def _validate(cls, value: object) -> Secret:
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("secret", "expected a string, got {kind}", {"kind": kind_of(value)})
        value = value.strip()
        if not value:
            raise PydanticCustomError("secret", "must not be empty")
        if _HEADER_UNSAFE.search(value):
            raise PydanticCustomError(
                "secret", "holds a character an HTTP header cannot carry (a control character or non-Latin-1)"
            )
        return cls(value)


def _refuse_bool(expected: str) -> Any:
    def check(value: object) -> object:
        if isinstance(value, bool):
            raise PydanticCustomError(expected, "")
        return value

    return BeforeValidator(check)


def _exact(value: object) -> object:
    """Floats go through their shortest text, so YAML's 0.7 is Decimal('0.7'), never a binary fraction."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", "")
    return Decimal(repr(value)) if isinstance(value, float) else value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise Invalid("must not be empty")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_URL = re.compile(r"https?://[^\s/?#@]+(@[^\s/?#]+)?(/\S*)?")


def _iso_date(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as error:
            raise Invalid(f"not a valid date ({error})") from None
    raise PydanticCustomError("date_type", "")


def _url(value: str) -> str:
    _remember_url_credentials(value)
    if not _URL.fullmatch(value):
        raise Invalid("must be an http:// or https:// URL")
    return value.rstrip("/")


def _remember_url_credentials(url: str) -> None:
    """A password written into a URL (`https://user:pa%40ss@host`) is as secret as a `password` key: it is
    remembered as written and decoded, with the Basic header it turns into."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: `_url` says so
        return
    if parts.password:
        remember_secret(parts.password)
        remember_basic_credentials(unquote(parts.username or ""), unquote(parts.password))


Text = Annotated[str, AfterValidator(_not_blank), Field(min_length=1)]
Integer = Annotated[int, _refuse_bool("int_type")]
Seconds = Annotated[float, _refuse_bool("float_type")]
"""A duration or interval (never money)."""
Exact = Annotated[Decimal, BeforeValidator(_exact), Field(allow_inf_nan=False)]
"""An exact number: money, rates, fractions."""
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Url = Annotated[str, AfterValidator(_url), Field(pattern=r"^https?://")]
"""An http(s) URL, without a trailing slash so clients can append paths."""


def unique(found: Iterable[tuple[Loc, object]], what: str) -> None:
    """Refuses a value given twice; `found` is (key path, value) pairs, and the error names both places."""
    first: dict[object, Loc] = {}
    for loc, value in found:
        if value in first:
            raise Invalid(f"duplicate {what} {value!r}", *loc, also=first[value], show=False)
        first[value] = loc


def only_when(wanted: bool, condition: str, **given: object) -> None:
    """Keys that mean something under one setting only: each is required when `wanted`, refused otherwise."""
    for name, value in given.items():
        if wanted and value is None:
            raise Invalid(f"required when {condition}", name, show=False)
        if not wanted and value is not None:
            raise Invalid(f"not allowed when {condition}", name, show=False)


# --- the report -------------------------------------------------------------------------------------------

_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null", list: "list"}
_TYPE_RULES = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "decimal_type": "expected a number",
    "decimal_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected a string",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
    "dict_type": "expected a mapping",
    "dataclass_type": "expected a mapping",
    "dataclass_args_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "date_type": "expected an ISO date (YYYY-MM-DD)",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than": ("lt", "must be less than {}"),
}
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def kind_of(value: object) -> str:
    """The YAML kind of a value, as errors name it."""
    return "mapping" if isinstance(value, Mapping) else _KINDS.get(type(value), type(value).__name__)


def join(path: str, key: str | int) -> str:
    """The key path of `key` under `path`: `a.b`, `a[0]`, or just `key` at the top."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate(
    model: type[T],
    raw: object,
    *,
    at: str = "",
    source: str | None = None,
    hidden: Collection[Loc] = (),
) -> T:
    """`raw` as a `model`, or a ConfigError with every problem; `at` is the key path of `raw` in the file.

    `hidden` holds the key paths whose values came from the environment: never shown in an error. A YAML
    null counts as an absent key.
    """
    raw = _without_nulls(raw)
    try:
        return _adapter(model).validate_python(raw)
    except ValidationError as error:
        report = _Report(model, raw, at, hidden)
        errors = error.errors(include_url=False)
        for item in errors:
            # A list whose items failed is also "too short" to pydantic: its items' errors say it all.
            below = [other["loc"][: len(item["loc"])] == item["loc"] for other in errors if other is not item]
            if not (item["type"] == "too_short" and any(below)):
                report.add(item)
        raise ConfigError.of(report.problems(), source) from None


def _without_nulls(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


@functools.cache
def _adapter(model: type[T]) -> TypeAdapter[T]:
    return TypeAdapter(model)


class _Report:
    def __init__(self, model: type, raw: object, at: str, hidden: Collection[Loc]) -> None:
        self._model, self._raw, self._at, self._hidden = model, raw, at, set(hidden)
        self._found: list[Problem | str] = []
        """Problems in the order found; a str stands for the unknown keys of the mapping at that path."""
        self._unknown: dict[str, tuple[list[str], list[str]]] = {}

    def problems(self) -> list[Problem]:
        problems = []
        for found in dict.fromkeys(self._found):
            if isinstance(found, Problem):
                problems.append(found)
                continue
            keys, allowed = self._unknown[found]
            names = ", ".join(repr(key) for key in keys)
            rule = (
                f"unknown {'key' if len(keys) == 1 else 'keys'} {names}; allowed keys: {', '.join(allowed)}"
            )
            problems.append(Problem(found, rule))
        return problems

    def add(self, item: Any) -> None:
        kind, ctx, value = item["type"], item.get("ctx", {}), item["input"]
        keys, model_loc = self._walk(item["loc"])
        self._model_loc = model_loc
        key_error = "[key]" in item["loc"]
        if kind in _UNKNOWN:
            parent = self._path(keys[:-1])
            if parent not in self._unknown:
                self._unknown[parent] = ([], _allowed_keys(self._model, model_loc[:-1]))
                self._found.append(parent)
            self._unknown[parent][0].append(str(keys[-1]))
            return
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            keys = (*keys, ctx["discriminator"].strip("'"))
            value = ctx.get("tag")
        rule, show = self._rule(kind, ctx, item["msg"])
        error = ctx.get("error")
        if isinstance(error, Invalid):
            rule = error.rule + (f", already used at {self._path(keys + error.also)}" if error.also else "")
            keys, show = (*keys, *error.at), error.show
            for part in error.at:
                value = _child(value, part)
        if key_error:  # a mapping's key is wrong: name the mapping (the key may not print on one line)
            keys, value = keys[:-1], keys[-1]
            rule = "keys must be strings (quote it)" if kind == "string_type" else rule
        if kind == "union_tag_not_found":
            rule, show = "required key is missing", False
        typed = kind in _TYPE_RULES or rule.startswith("expected ")
        if show and self._may_show(keys, value):
            rule += f", got {_shown(value, typed=typed)}"
        elif show and typed:
            rule += f", got {kind_of(value)}"
        self._found.append(Problem(self._path(keys), rule))

    def _rule(self, kind: str, ctx: Mapping[str, Any], message: str) -> tuple[str, bool]:
        """The rule in our words, and whether the offending value may follow it."""
        if kind == "missing":
            return "required key is missing", False
        if kind in _TYPE_RULES:
            return _TYPE_RULES[kind], True
        if kind in _BOUNDS:
            name, rule = _BOUNDS[kind]
            low, high = _range(self._model, self._model_loc)
            if low is not None and high is not None:
                return f"must be between {low} and {high}", True
            return rule.format(ctx[name]), True
        if kind in ("literal_error", "union_tag_invalid"):
            expected = ctx.get("expected") or ctx.get("expected_tags", "")
            return "must be one of " + "|".join(re.findall(r"'([^']*)'", expected)), True
        if kind in ("string_too_short", "too_short"):
            return (
                "must not be empty" if kind == "string_too_short" else "must not be empty (give at least one)"
            ), False
        if kind == "string_pattern_mismatch":
            return f"must match {ctx['pattern']}", True
        if kind == "secret":
            return message, False
        if kind == "value_error":
            return str(ctx["error"]), True
        return message, False

    def _walk(self, loc: Sequence[str | int]) -> tuple[Loc, Loc]:
        """The key path in the file of an error location, and the location with `[key]` marks dropped.

        Pydantic puts the tag of a discriminated union (`ecosystem`, emitter `type`) in the location; the
        file has no such key, so a part naming the tag of the mapping at hand is skipped.
        """
        keys: list[str | int] = []
        value: object = self._raw
        model_loc = [part for part in loc if part != "[key]"]
        for part in model_loc:
            if isinstance(value, Mapping) and part not in value and part in _tags(value):
                continue
            keys.append(part)
            value = _child(value, part)
        return tuple(keys), tuple(model_loc)

    def _may_show(self, keys: Loc, value: object) -> bool:
        if isinstance(value, (Mapping, list, tuple, Secret)) or value is None:
            return False
        secret = any(isinstance(key, str) and key.endswith(SECRET_NAMES) for key in keys)
        return not secret and keys not in self._hidden

    def _path(self, keys: Loc) -> str:
        path = self._at
        for key in keys:
            path = join(path, key)
        return path


def _tags(value: Mapping[Any, Any]) -> tuple[object, ...]:
    return (value.get("ecosystem"), value.get("type"))


def _child(value: object, part: str | int) -> object:
    if isinstance(value, Mapping):
        return value.get(part)
    if isinstance(value, list) and isinstance(part, int) and part < len(value):
        return value[part]
    return None


def _shown(value: object, *, typed: bool) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    text = text if len(text) <= 100 else text[:97] + "..."
    return f"{kind_of(value)} {text}" if typed else text


def _allowed_keys(model: object, loc: Loc) -> list[str]:
    """The keys the settings model at `loc` (below `model`) takes: the fields of that dataclass."""
    current = model
    for part in loc:
        current = _step(current, part)
    return sorted(_fields(_strip(current)))


def _range(model: object, loc: Loc) -> tuple[object, object]:
    """The inclusive bounds declared on the field at `loc`, when it is a field of a settings model."""
    current: object = model
    for part in loc[:-1]:
        current = _step(current, part)
    info = getattr(_strip(current), "__pydantic_fields__", {}).get(loc[-1]) if loc else None
    found = {type(item).__name__: item for item in getattr(info, "metadata", ())}
    low, high = found.get("Ge"), found.get("Le")
    return (getattr(low, "ge", None), getattr(high, "le", None))


def _step(annotation: object, part: str | int) -> object:
    current = _strip(annotation)
    members = get_args(current)
    if _is_union(current):  # a discriminated union: `part` is the tag of one member
        return next(m for m in members if any(part in get_args(a) for a in _fields(m).values()))
    fields = _fields(current)
    if fields:
        return fields[str(part)]
    origin = get_origin(current)
    return members[1] if origin is not None and issubclass(origin, Mapping) else members[0]


def _strip(annotation: object) -> object:
    """The type under Annotated[...] and `| None`."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif _is_union(annotation) and type(None) in get_args(annotation):
            annotation = Union[tuple(m for m in get_args(annotation) if m is not type(None))]  # noqa: UP007
        else:
            return annotation


def _is_union(annotation: object) -> bool:
    return get_origin(annotation) in (Union, UnionType)


def _fields(annotation: object) -> dict[str, object]:
    """The keys a settings model takes (field names, or their aliases), with their annotations."""
    fields = getattr(annotation, "__pydantic_fields__", {})
    return {f.alias or name: f.annotation for name, f in fields.items() if f.init is not False}
