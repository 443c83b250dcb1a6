"""The vocabulary of the settings models: `ConfigError`, `Secret`, the field types, and the error report.

Every section of the config file is a pydantic dataclass made with `@settings`: unknown keys refused, frozen,
each field typed with the annotations below (numbers also accepted as text, since `${VAR}` substitution
yields strings; booleans never taken for numbers). `validate` turns pydantic's errors into one `ConfigError`
holding every problem, each as `key.path: rule`, never a traceback, and never a value that is a secret or
came from an environment variable. Every secret read (a `Secret`, a password written into a URL) is also
remembered (redaction.py), so that no log line, error message or stored error of the process shows it in any
encoding either.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic import dataclasses as pydantic_dataclasses
from pydantic_core import PydanticKnownError, core_schema

from chargeback_assets.redaction import MASK, remember_basic_credentials, remember_secret, scrub

T = TypeVar("T")
Loc = tuple[str | int, ...]

settings = functools.partial(pydantic_dataclasses.dataclass, frozen=True, config=ConfigDict(extra="forbid"))
"""The decorator of every settings model: a frozen pydantic dataclass that refuses unknown keys."""

SECRET_NAMES = ("secret", "password", "token")
"""A key whose name ends in one of these never has its value shown, whatever the error."""


class ConfigError(ValueError):
    """A configuration broke rules: one line per problem, `file: key.path: rule` (the file when known).

    `path` and `rule` are those of the first problem; `problems` holds them all as (path, rule).
    """

    def __init__(
        self, path: str, rule: str, *, source: str | None = None, more: Sequence[tuple[str, str]] = ()
    ):
        self.problems = ((path, rule), *more)
        self.path, self.rule, self.source = path, rule, source
        lines = (
            ": ".join(filter(None, (source or ("" if p else "<config>"), p, r))) for p, r in self.problems
        )
        super().__init__(scrub("\n".join(lines)))


class Invalid(ValueError):
    """Raised in a validator: `rule` about the key path `at` below the value validated.

    Unless `show` is false, the report adds `, got <value>` when the value is a short scalar it may show;
    `also` names the key path (from the same place) of an earlier, clashing value.
    """

    def __init__(self, rule: str, *at: str | int, also: Loc | None = None, show: bool = True) -> None:
        super().__init__(rule)
        self.at, self.also, self.show = at, also, show


_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e\xa0-\xff]")


class Secret(SecretStr):
    """A credential: masked in `str()` and `repr()`; only `reveal()` gives the value, where it is used.

    As a settings field it takes a string without its surrounding whitespace (a value read with `$(cat file)`
    ends in a newline) and refuses what an HTTP header cannot carry; its errors never show the value.
    Making one remembers the value, so from then on the process masks it wherever it writes text.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        remember_secret(value)

    def reveal(self) -> str:
        return self.get_secret_value()

    def _display(self) -> str:  # shown as the redaction mask, `Secret('***')`
        return MASK

    @classmethod
    def __get_pydantic_core_schema__(cls, source: object, handler: object) -> core_schema.CoreSchema:
        text = core_schema.str_schema(strip_whitespace=True, min_length=1)
        secret = core_schema.no_info_after_validator_function(cls._carried, text)
        return core_schema.no_info_before_validator_function(
            lambda v: v.reveal() if isinstance(v, Secret) else v, secret
        )

    @classmethod
    def _carried(cls, value: str) -> Secret:
        if _HEADER_UNSAFE.search(value):
            rule = "holds a character an HTTP header cannot carry (a control character or non-Latin-1)"
            raise Invalid(rule, show=False)
        return cls(value)


class DatabaseUrl(Secret):
    """A `postgresql://user:password@host:port/database` URL: a secret because of its password.

    `str()` and `repr()` show it without the password and the query (which may hold one either): `location`,
    for messages naming where the data is. `reveal()` gives it whole, to connect with. The password is
    remembered as written and percent-decoded.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        parts = urlsplit(value)
        if parts.password:
            remember_secret(parts.password)
            remember_secret(unquote(parts.password))
        host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        user = f"{unquote(parts.username)}@" if parts.username else ""
        self.location = f"postgresql://{user}{host}{parts.path}"

    def _display(self) -> str:
        return self.location

    @classmethod
    def __get_pydantic_core_schema__(cls, source: object, handler: object) -> core_schema.CoreSchema:
        text = core_schema.str_schema(strip_whitespace=True, min_length=1)
        url = core_schema.no_info_after_validator_function(cls._parsed, text)
        return core_schema.no_info_before_validator_function(
            lambda v: v.reveal() if isinstance(v, Secret) else v, url
        )

    @classmethod
    def _parsed(cls, value: str) -> DatabaseUrl:
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in ("postgresql", "postgres"):
            shown = f", got a {scheme}:// URL" if scheme else ""
            raise Invalid(f"must be a postgresql:// URL{shown}", show=False)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - a bad port raises here
        except ValueError:
            raise Invalid("is not a valid postgresql:// URL", show=False) from None
        if not parts.path.strip("/"):
            raise Invalid(
                "must name the database (postgresql://user:password@host:port/DATABASE)", show=False
            )
        return cls(value)


def checked(problem: Callable[[Any], str | None], *, show: bool = True) -> AfterValidator:
    """A validator from a function that says what is wrong with a value (None when nothing is)."""

    def check(value: T) -> T:
        if (rule := problem(value)) is not None:
            raise Invalid(rule, show=show)
        return value

    return AfterValidator(check)


def matching(pattern: str, rule: str) -> AfterValidator:
    """A validator refusing, with `rule`, text that does not match `pattern` as a whole."""
    compiled = re.compile(pattern)
    return checked(lambda value: None if compiled.fullmatch(value) else rule)


def _refuse_bool(expected: str) -> Any:
    def check(value: object) -> object:
        if isinstance(value, bool):
            raise PydanticKnownError(expected)  # type: ignore[arg-type]
        return value

    return BeforeValidator(check)


def _iso_date(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as error:
            raise Invalid(f"not a valid date ({error})") from None
    raise PydanticKnownError("date_type")


Text = Annotated[
    str, checked(lambda value: None if value.strip() else "must not be empty"), Field(min_length=1)
]
Integer = Annotated[int, _refuse_bool("int_type")]
Seconds = Annotated[float, _refuse_bool("float_type")]
"""A duration or interval (never money)."""
Exact = Annotated[
    Decimal,
    BeforeValidator(lambda number: Decimal(repr(number)) if isinstance(number, float) else number),
    Field(allow_inf_nan=False),
]
"""An exact number: money, rates, fractions. Floats go through their shortest text, so YAML's 0.7 is
Decimal('0.7'), never a binary fraction."""
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Currency = Annotated[str, matching(r"[A-Z]{3}", "must be an ISO 4217 currency code such as USD")]
"""The currency a cost model prices in: three capital letters (USD, EUR)."""


def _remember_url_credentials(url: str) -> str:
    """A password written into a URL (`https://user:pa%40ss@host`) is as secret as a `password` key: it is
    remembered as written and decoded, with the Basic header it turns into."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: the next check says so
        return url
    if parts.password:
        remember_secret(parts.password)
        remember_basic_credentials(unquote(parts.username or ""), unquote(parts.password))
    return url


Url = Annotated[
    str,
    AfterValidator(_remember_url_credentials),
    matching(r"https?://[^\s/?#@]+(@[^\s/?#]+)?(/\S*)?", "must be an http:// or https:// URL"),
    AfterValidator(lambda url: url.rstrip("/")),
    Field(pattern=r"^https?://"),
]
"""An http(s) URL, without a trailing slash so clients can append paths."""


def unique_by(attribute: str, what: str | None = None) -> AfterValidator:
    """Refuses two items (of a list, or values of a mapping) with the same `attribute`, naming both places."""

    def check(items: T) -> T:
        first: dict[object, str | int] = {}
        for at, item in items.items() if isinstance(items, Mapping) else enumerate(items):  # type: ignore[attr-defined]
            value = getattr(item, attribute)
            if value in first:
                also = (first[value], attribute)
                raise Invalid(
                    f"duplicate {what or attribute} {value!r}", at, attribute, also=also, show=False
                )
            first[value] = at
        return items

    return AfterValidator(check)


def only_when(selector: str, **keys: tuple[str, ...]) -> Any:
    """A model check for keys that mean something under some values of the key `selector` only: each key is
    required under its values and refused under the others."""

    def check(model: T) -> T:
        chosen = getattr(model, selector)
        for name, values in keys.items():
            if (getattr(model, name) is None) == (chosen in values):
                rule = "required" if chosen in values else "not allowed"
                raise Invalid(f"{rule} when {selector} is {chosen}", name, show=False)
        return model

    return model_validator(mode="after")(check)


# --- the report -------------------------------------------------------------------------------------------

_EXPECTED = {"int": "an integer", "bool": "a boolean", "string": "a string", "path": "a path"}
_EXPECTED |= {"date": "an ISO date (YYYY-MM-DD)", "list": "a list", "tuple": "a list", "float": "a number"}
_EXPECTED |= {"decimal": "a number", "dict": "a mapping", "dataclass": "a mapping", "model": "a mapping"}
"""What a type error (`int_parsing`, `dataclass_args_type`, ...) expected, by the first word of its type."""
_RULES = {
    "missing": ("required key is missing", False),
    "union_tag_not_found": ("required key is missing", False),
    "union_tag_invalid": ("must be one of {expected_tags}", True),
    "literal_error": ("must be one of {expected}", True),
    "greater_than_equal": ("must be at least {ge}", True),
    "less_than_equal": ("must be at most {le}", True),
    "greater_than": ("must be greater than {gt}", True),
    "finite_number": ("expected a finite number", True),
    "string_too_short": ("must not be empty", False),
    "too_short": ("must not be empty (give at least one)", False),
}
"""Other errors in our words, and whether the offending value may follow; any other error keeps its text."""
_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null", list: "list"}


def key_path(keys: Loc, at: str = "") -> str:
    """The key path of `keys` below `at`: `a.b`, `a[0]`."""
    for key in keys:
        at = f"{at}[{key}]" if isinstance(key, int) else f"{at}.{key}" if at else str(key)
    return at


def validate(
    model: type[T], raw: object, *, at: str = "", source: str | None = None, hidden: Collection[Loc] = ()
) -> T:
    """`raw` as a `model`, or a ConfigError with every problem; `at` is the key path of `raw` in the file.

    `hidden` holds the key paths whose values came from the environment: never shown in an error. A YAML
    null counts as an absent key.
    """
    raw = _without_nulls(raw)
    try:
        return adapter(model).validate_python(raw)
    except ValidationError as error:
        problems = list(dict.fromkeys(_problems(model, error.errors(include_url=False), at, set(hidden))))
        raise ConfigError(*problems[0], source=source, more=problems[1:]) from None


def _without_nulls(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


@functools.cache
def adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _problems(model: object, errors: Sequence[Any], at: str, hidden: set[Loc]) -> Iterator[tuple[str, str]]:
    """Pydantic's errors as (key path, rule) lines."""
    for error in errors:
        loc, kind, value = error["loc"], error["type"], error["input"]
        if kind == "too_short" and any(other["loc"][: len(loc)] == loc != other["loc"] for other in errors):
            continue  # a list whose items failed is also "too short" to pydantic: the items' errors tell
        keys, field, holder = _locate(model, loc)
        ctx = {k: _choices(v) if k.startswith("expected") else v for k, v in error.get("ctx", {}).items()}
        template, show = _RULES.get(kind, (error["msg"], False))
        rule = template.format(**ctx) if kind in _RULES else template
        if kind.split("_")[0] in _EXPECTED and kind.endswith(("_type", "_parsing", "_from_float")):
            rule, show = f"expected {_EXPECTED[kind.split('_')[0]]}", True
        if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # name the mapping and what it takes
            rule = f"unknown key {keys[-1]!r}; allowed keys: {', '.join(sorted(_fields(holder)))}"
            keys = keys[:-1]
        if kind.startswith("union_tag"):  # the tag (`ecosystem`, emitter `type`) is wrong or missing
            keys, value = (*keys, ctx["discriminator"].strip("'")), ctx.get("tag")
        metadata = getattr(field, "metadata", ())  # where both bounds are declared, say both
        bounds = [getattr(m, bound) for bound in ("ge", "le") for m in metadata if hasattr(m, bound)]
        if kind in ("greater_than_equal", "less_than_equal") and len(bounds) == 2:
            rule = "must be between {} and {}".format(*bounds)
        if isinstance(invalid := ctx.get("error"), ValueError):
            rule, show = str(invalid), getattr(invalid, "show", True)
        if isinstance(invalid, Invalid):
            rule += f", already used at {key_path(keys + invalid.also, at)}" if invalid.also else ""
            keys += invalid.at
            for part in invalid.at:
                value = value.get(part) if isinstance(value, Mapping) else None
        typed = rule.startswith("expected ")
        if loc[-1:] == ("[key]",):  # a mapping's key is wrong: name the mapping (the key may not print)
            keys, value = keys[:-1], keys[-1]
            rule = "keys must be strings (quote it)" if kind == "string_type" else rule
        secret = any(isinstance(key, str) and key.endswith(SECRET_NAMES) for key in keys)
        yield key_path(keys, at), _with_value(rule, value, typed, show and not secret and keys not in hidden)


def _choices(expected: str) -> str:
    """Pydantic's `'a', 'b' or 'c'` as `a|b|c`."""
    return "|".join(re.findall(r"'([^']*)'", expected))


def _with_value(rule: str, value: object, typed: bool, show: bool) -> str:
    """A type rule (`expected ...`) says the kind it got; the value itself follows where it may be shown and
    is a short scalar."""
    kind = "mapping" if isinstance(value, Mapping) else _KINDS.get(type(value), type(value).__name__)
    text = repr(value) if isinstance(value, str) else str(value)
    if show and not isinstance(value, (Mapping, list, tuple, type(None))):
        return f"{rule}, got {kind + ' ' if typed else ''}{text if len(text) <= 100 else text[:97] + '...'}"
    return f"{rule}, got {kind}" if typed else rule


def _locate(model: object, loc: Sequence[str | int]) -> tuple[Loc, Any, object]:
    """The key path in the file of pydantic's error location, the field there and the model holding it.

    Pydantic puts the tag of a discriminated union (`ecosystem`, emitter `type`) in the location; the file
    has no such key, so that part only picks the union's member.
    """
    keys: list[str | int] = []
    annotation, field, holder = model, None, None
    for part in (part for part in loc if part != "[key]"):
        bare = _bare(annotation)
        if get_origin(bare) in (Union, UnionType):
            tagged = [
                m for m in get_args(bare) if any(part in get_args(f.annotation) for f in _fields(m).values())
            ]
            annotation = tagged[0] if tagged else None
            continue
        keys.append(part)
        holder, field = bare, _fields(bare).get(str(part))
        items = [arg for arg in get_args(bare) if arg is not ...]  # of Mapping[key, item], tuple[item, ...]
        annotation = field.annotation if field else items[-1] if items else None
    return tuple(keys), field, holder


def _bare(annotation: object) -> object:
    """The type under Annotated[...] and `| None`."""
    while get_origin(annotation) is Annotated or type(None) in get_args(annotation):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _fields(model: object) -> dict[str, Any]:
    """The keys a settings model takes (field names, or their aliases), with their pydantic fields."""
    fields = getattr(model, "__pydantic_fields__", {})
    return {f.alias or name: f for name, f in fields.items() if f.init is not False}
