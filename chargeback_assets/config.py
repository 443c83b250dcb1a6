"""The one YAML config file -> validated, immutable settings, one pydantic model per section.

`load_config` reads the file (`$CHARGEBACK_CONFIG`, default `chargeback.yaml`), substitutes `${VAR}` and
`${VAR:-default}` in every string value, and validates everything before any asset runs: each tenant's
`plugin_settings` by its ecosystem's model, each emitter's `params` by the emitter's, and each override by
importing it. A bad file fails at load with every problem, each naming the file and its key path. The models
also give the published JSON Schema (`json_schema`, `chargeback.schema.json`).
"""

from __future__ import annotations

import difflib
import itertools
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, WithJsonSchema, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema

from chargeback_assets.ecosystems import ECOSYSTEMS
from chargeback_assets.ecosystems.retry import DEFAULT_RETRY_BUDGET_SECONDS, MAX_RETRY_BUDGET_SECONDS
from chargeback_assets.emitters.prometheus import label_clashes
from chargeback_assets.emitters.registry import EMITTER_PARAMS
from chargeback_assets.engine.loading import LoadError, load_allocator, load_resolver
from chargeback_assets.validation import (
    ConfigError,
    DatabaseUrl,
    Exact,
    Integer,
    Invalid,
    IsoDate,
    Loc,
    Seconds,
    Text,
    adapter,
    checked,
    key_path,
    matching,
    settings,
    unique_by,
    validate,
)

CONFIG_ENV_VAR = "CHARGEBACK_CONFIG"
DEFAULT_CONFIG_FILE = "chargeback.yaml"
SCHEMA_FILE = "chargeback.schema.json"
DEFAULT_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
CKU_USAGE_RATIO = "kafka_cku_usage_ratio"
CKU_SHARED_RATIO = "kafka_cku_shared_ratio"
CKU_RATIO_DEFAULTS = {CKU_USAGE_RATIO: Decimal("0.70"), CKU_SHARED_RATIO: Decimal("0.30")}
RATIO_TOLERANCE = Decimal("0.0001")
TAG_VALUE_MAX_LENGTH = 256
MAX_EXPANDED_VALUES = 100_000
"""A document whose aliases expand beyond this many values is refused, its walk cut short (alias bombs)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_FILE_SAFE_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_FILE_SAFE_RULE = (
    "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (it names output files)"
)
_IS_A_DIRECTORY = "is a directory; give the database file, e.g. data/chargeback.db"
_OWNER = r"team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+"
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_CRON_NAMES = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "weekday": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_CRON_NUMBERS = {
    field: {n: i + (field == "month") for i, n in enumerate(names)} for field, names in _CRON_NAMES.items()
}
_CRON_ITEM = re.compile(r"(\*|(\w+)(?:-(\w+))?)(?:/(\d+))?")


def tag_problem(key: str, value: str | None = None) -> str | None:
    """The one rule for tag keys and values (config and the tags command line); None when valid."""
    if not _TAG_KEY.fullmatch(key):
        return "tag keys must match ^[a-z][a-z0-9_.-]{0,62}$ (lower case, start with a letter)"
    if value is None:
        return None
    if not value.strip():
        return "must not be empty"
    if len(value) > TAG_VALUE_MAX_LENGTH:
        return f"must be at most {TAG_VALUE_MAX_LENGTH} characters, got {len(value)}"
    if _CONTROL_CHARACTER.search(value):
        return "tag values may not contain control characters"
    return None


# --- field types ------------------------------------------------------------------------------------------


def _tenant_name(name: str) -> str | None:
    """Tenant names are Dagster partition keys: not blank, no multi-key separators, one printable line."""
    why, forbidden = None, [c for c in "|,[]" if c in name]
    if not name.strip():
        why = "it is empty or whitespace"
    elif _CONTROL_CHARACTER.search(name):
        why = "it contains a control character (a newline, NUL, ...)"
    elif forbidden:
        why = f"it contains {forbidden[0]!r} (no | , [ ])"
    return why and f"tenant name {name!r} cannot be a partition key: {why}"


def _log_format(value: str) -> str | None:
    try:
        logging.Formatter(value, validate=True)
    except ValueError as error:
        return f"not a valid logging format ({error})"
    return None


def _cron(value: str) -> str | None:
    """Five fields (minute hour day month weekday), each a list of `*`, `a`, `a-b`, with an optional `/n`."""
    fields = value.split()
    if len(fields) != len(_CRON_FIELDS):
        return "must be a cron expression of 5 fields (minute hour day month weekday)"
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.fullmatch(item)
            bounds = [bound for bound in (match.groups()[1:3] if match else ()) if bound]
            named = _CRON_NUMBERS.get(name, {})
            numbers = [int(bound) if bound.isdigit() else named.get(bound.lower()) for bound in bounds]
            if not match or None in numbers or match.group(4) == "0":
                return f"cron {name} field {text!r} is not valid"
            if any(not low <= number <= high for number in numbers):  # type: ignore[operator]
                return f"cron {name} field {text!r} is out of range {low}-{high}"
    return None


LogLevel = Annotated[
    Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
    BeforeValidator(
        lambda level: level.upper() if isinstance(level, str) and level.upper() in LOG_LEVELS else level
    ),
]
"""A level in any case; a wrong one is reported as written."""
Fraction = Annotated[Exact, Field(ge=0, le=1)]
TagKey = Annotated[str, checked(tag_problem)]
TagValue = Annotated[str, checked(lambda value: tag_problem("k", value), show=False)]
TagTable = Mapping[str, Mapping[TagKey, TagValue]]
FileSafeId = Annotated[Text, matching(_FILE_SAFE_ID, _FILE_SAFE_RULE)]
AssetOwner = Annotated[str, matching(_OWNER, "must be an e-mail address or team:<name>")]
DatabaseFile = Annotated[Path, checked(lambda path: _IS_A_DIRECTORY if path.is_dir() else None)]


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


# --- sections -----------------------------------------------------------------------------------------------


@settings
class StorageConfig:
    """Where the chargeback data is kept: a SQLite file (`path`, the default) or a PostgreSQL database
    (`url`). Exactly one of them."""

    path: DatabaseFile | None = Path("data/chargeback.db")
    """The SQLite file; created with its folder when missing."""
    url: DatabaseUrl | None = None
    """`postgresql://user:password@host:port/database` (PostgreSQL 15 or newer); write the password as
    `${VAR}`. Shown everywhere without the password."""

    @model_validator(mode="before")
    @classmethod
    def _one_database(cls, raw: object) -> object:
        """`url` replaces the default `path`; both given is refused (which database would be meant?)."""
        if isinstance(raw, Mapping) and raw.get("url") is not None:
            if raw.get("path") is not None:
                raise Invalid(
                    "give storage.path (SQLite) or storage.url (PostgreSQL), not both", "url", show=False
                )
            return {**raw, "path": None}
        return raw


@settings
class FeaturesConfig:
    max_parallel_tenants: Annotated[Integer, Field(ge=1, le=64)] = 4


@settings
class SourcesConfig:
    """How patient a run is with its sources (billing, inventory, metrics APIs)."""

    retry_budget_seconds: Annotated[Seconds, Field(ge=0, le=MAX_RETRY_BUDGET_SECONDS)] = (
        DEFAULT_RETRY_BUDGET_SECONDS
    )
    """Time one run may spend retrying transient source faults, all tenants and requests together; 0 is
    no retries at all. When it runs out, the source's error stands (metrics then fall back visibly)."""


@settings
class LoggingConfig:
    level: LogLevel = "INFO"
    format: Annotated[Text, checked(_log_format, show=False)] = DEFAULT_LOG_FORMAT
    per_module_levels: Mapping[str, LogLevel] = field(default_factory=_empty)


@settings
class OrchestrationConfig:
    """When the daily schedule fires (UTC cron) and how often the billing and emission-retry sensors look."""

    schedule_cron: Annotated[Text, checked(_cron)] = "0 3 * * *"
    billing_sensor_interval_seconds: Annotated[Integer, Field(ge=30)] = 3600
    emission_retry_interval_seconds: Annotated[Integer, Field(ge=30)] = 600
    asset_owners: tuple[AssetOwner, ...] = ()
    """Shown as the owners of every asset in the Dagster UI: e-mail addresses or `team:<name>`."""


@settings(kw_only=True)
class EmitterConfig:
    """`name` (default: the type) keys the emission state; `params` are validated by the emitter's model."""

    type: str
    name: Text | None = None
    aggregation: Literal["daily", "monthly"] = "daily"
    lookback_days: Annotated[Integer, Field(ge=1)] | None = None
    params: Any

    def __post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.type)


@settings
class TagsConfig:
    """Custom tags by identity id and by resource id: {id: {key: value}}."""

    identities: TagTable = field(default_factory=_empty)
    resources: TagTable = field(default_factory=_empty)

    @model_validator(mode="after")
    def _one_label_per_key(self) -> TagsConfig:
        keys = [key for table in (self.identities, self.resources) for tags in table.values() for key in tags]
        for clash in label_clashes(keys):
            raise Invalid(f"tag keys {clash} would be one Prometheus label; use one spelling", show=False)
        return self


def _allocator_params(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Free-form knobs for allocators; numbers stay exact (ints as int, the rest as Decimal, never float).

    `*_ratio` keys must be numbers. The CKU split must sum to 1; a side that is not given takes its default,
    so one side alone is checked against the other's default.
    """
    params: dict[str, Any] = dict(CKU_RATIO_DEFAULTS)
    for key, value in raw.items():
        if key.endswith("_ratio") or isinstance(value, float):
            try:
                value = adapter(Exact).validate_python(value.strip() if isinstance(value, str) else value)
            except ValidationError:
                raise Invalid("expected a number", key) from None
            if key in CKU_RATIO_DEFAULTS and not 0 <= value <= 1:
                raise Invalid("must be between 0 and 1", key)
        elif not isinstance(value, (str, int)):
            raise Invalid("expected a number, string or boolean", key)
        params[key] = value
    total = params[CKU_USAGE_RATIO] + params[CKU_SHARED_RATIO]
    if abs(total - 1) > RATIO_TOLERANCE:
        raise Invalid(f"{CKU_USAGE_RATIO} + {CKU_SHARED_RATIO} must be 1.0, got {total}", show=False)
    return MappingProxyType(params)


def _importable(load: Any) -> AfterValidator:
    def problem(path: str) -> str | None:
        try:
            load(path)
        except LoadError as error:
            return error.reason
        return None

    return checked(problem)


AllocatorParams = Annotated[
    Mapping[str, Any],
    AfterValidator(_allocator_params),
    WithJsonSchema({"type": "object", "additionalProperties": {"type": ["number", "string", "boolean"]}}),
]
AllocatorPath = Annotated[Text, _importable(load_allocator)]
ResolverPath = Annotated[Text, _importable(load_resolver)]


def _variant(base: type, title: str, annotations: dict[str, Any], **defaults: Any) -> Any:
    """A subclass of `base` narrowing some fields: one member of a union told apart by its tag field."""
    namespace = {"__annotations__": annotations, "__module__": __name__, "__qualname__": title, **defaults}
    return settings(type(title, (base,), namespace), kw_only=True)


EMITTER_MODELS = {
    name: _variant(EmitterConfig, f"{name.title()}EmitterConfig", {"type": Literal[name], "params": params})
    for name, params in EMITTER_PARAMS.items()
}
EMITTER_MODEL = Annotated[Union[tuple(EMITTER_MODELS.values())], Field(discriminator="type")]  # noqa: UP007


@settings(kw_only=True)
class TenantConfig:
    """One tenant; `name` is its key under `tenants`. Each ecosystem has a subclass (see `TENANT_MODELS`)."""

    name: SkipJsonSchema[str] = field(init=False, default="")
    ecosystem: str
    tenant_id: FileSafeId
    start_date: IsoDate
    recalculation_days: Annotated[Integer, Field(ge=1, le=62)] = 7
    settle_days: Annotated[Integer, Field(ge=0, le=30)] = 3
    retention_days: Annotated[Integer, Field(ge=1, le=730)] = 250
    retention_max_days_per_run: Annotated[Integer, Field(ge=1)] = 7
    allocation_retry_limit: Annotated[Integer, Field(ge=1, le=10)] = 3
    topic_attribution_retry_limit: Annotated[Integer, Field(ge=1, le=10)] = 3
    zero_gather_deletion_threshold: Annotated[Integer, Field(ge=-1)] = -1
    gather_failure_threshold: Annotated[Integer, Field(gt=0)] = 5
    unallocated_warn_fraction: Fraction = Decimal("0.25")
    unattributed_warn_fraction: Fraction = Decimal("0.15")
    max_line_amount: Annotated[Exact, Field(gt=0)] = Decimal("10000000")
    allocator_params: AllocatorParams = field(default_factory=lambda: _allocator_params({}))
    allocator_overrides: Mapping[str, AllocatorPath] = field(default_factory=_empty)
    identity_resolution_overrides: Mapping[str, ResolverPath] = field(default_factory=_empty)
    plugin_settings: Any
    emitters: Annotated[tuple[EMITTER_MODEL, ...], unique_by("name", "emitter name")] = ()
    tags: TagsConfig = field(default_factory=TagsConfig)

    @model_validator(mode="after")
    def _overrides_name_product_types(self) -> TenantConfig:
        ecosystem = ECOSYSTEMS.get(self.ecosystem)
        if ecosystem is None:  # a TenantConfig made in code, not from a file
            return self
        owned = ecosystem.product_types(self.plugin_settings)
        for product_type in self.allocator_overrides:
            if product_type not in owned:
                near = difflib.get_close_matches(product_type, owned, n=1)
                hint = f"did you mean {near[0]}? " if near else ""
                known = ", ".join(sorted(owned))
                rule = f"{self.ecosystem} has no product type {product_type!r}; {hint}known: {known}"
                raise Invalid(rule, "allocator_overrides", product_type, show=False)
        return self


def _tenant_model(name: str) -> type[TenantConfig]:
    """A TenantConfig whose `plugin_settings` and identity-resolution override keys are one ecosystem's."""
    ecosystem = ECOSYSTEMS[name]
    services = Literal.__getitem__(tuple(sorted(ecosystem.service_types)))  # type: ignore[attr-defined]
    annotations = {
        "ecosystem": Literal[name],
        "plugin_settings": ecosystem.settings,
        "identity_resolution_overrides": Mapping[services, ResolverPath],  # type: ignore[valid-type]
    }
    title = "".join(part.title() for part in name.split("_")) + "Tenant"
    return _variant(
        TenantConfig, title, annotations, identity_resolution_overrides=field(default_factory=_empty)
    )


TENANT_MODELS = {name: _tenant_model(name) for name in ECOSYSTEMS}
TENANT_MODEL = Annotated[Union[tuple(TENANT_MODELS.values())], Field(discriminator="ecosystem")]  # noqa: UP007


def _some_tenants(tenants: Mapping[str, TenantConfig]) -> Mapping[str, TenantConfig]:
    if not tenants:
        raise Invalid("no tenants configured", show=False)
    return MappingProxyType(dict(tenants))


@settings(kw_only=True)
class AppConfig:
    storage: StorageConfig = field(default_factory=StorageConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    tenants: Annotated[
        Mapping[Annotated[str, checked(_tenant_name, show=False)], TENANT_MODEL],
        AfterValidator(_some_tenants),
        unique_by("tenant_id"),
    ] = Field(default_factory=_empty, validate_default=True)

    def __post_init__(self) -> None:
        for name, tenant in self.tenants.items():
            object.__setattr__(tenant, "name", name)


# --- loading ------------------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> AppConfig:
    """Reads and validates the config file; `path` None means `$CHARGEBACK_CONFIG`, else `chargeback.yaml`."""
    environ = os.environ if environ is None else environ
    file = Path(path if path is not None else environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)
    source = str(file)
    try:
        raw = yaml.load(file.read_bytes().decode("utf-8"), Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError("", _unreadable(error), source=source) from None
    return parse_config(raw if raw is not None else {}, environ, source=source)


def _unreadable(error: Exception) -> str:
    """Why the file gives no document; for YAML only the problem and its position, since the snippet of the
    line that PyYAML quotes could show a secret."""
    if isinstance(error, FileNotFoundError):
        return f"config file not found (pass a path or set {CONFIG_ENV_VAR})"
    if isinstance(error, OSError):
        return f"cannot read the config file: {error.strerror or error}"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start} is 0x{error.object[error.start]:02x})"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"invalid YAML{where}: {error.problem or error.context}"
    return f"invalid YAML: {type(error).__name__}"


def parse_config(raw: object, environ: Mapping[str, str], source: str | None = None) -> AppConfig:
    """Validates an already-loaded YAML document; `source` (the file) starts every error line.

    `${VAR}` and `${VAR:-default}` are replaced in every string value (never in keys); as in a shell, the
    default also applies when the variable is set but empty. Errors never show a value that came from the
    environment (`hidden`). A document whose aliases expand to too many values is refused (alias bombs).
    """
    hidden: set[Loc] = set()
    walked = itertools.count()
    too_big = f"the document expands to more than {MAX_EXPANDED_VALUES} values (YAML aliases?)"

    def substitute(value: Any, at: Loc) -> Any:
        if next(walked) > MAX_EXPANDED_VALUES:
            raise ConfigError("", too_big, source=source)
        if isinstance(value, Mapping):
            return {key: substitute(item, (*at, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [substitute(item, (*at, index)) for index, item in enumerate(value)]
        return _VARIABLE.sub(lambda match: lookup(match, at), value) if isinstance(value, str) else value

    def lookup(match: re.Match[str], at: Loc) -> str:
        name, fallback = match.groups()
        if environ.get(name) is None and fallback is None:
            rule = f"environment variable {name} is not set and has no default"
            raise ConfigError(key_path(at), rule, source=source)
        hidden.add(at)
        return environ.get(name) or fallback or ""

    try:
        substituted = substitute(raw, ())
    except RecursionError:  # a node that holds itself
        raise ConfigError("", too_big, source=source) from None
    return validate(AppConfig, substituted, source=source, hidden=hidden)


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML would keep the last silently),
    and leaves dates as text, so that a bad one (`2026-13-01`) is reported with its key path."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys are refused by the base constructor
            if key in seen:
                problem = f"duplicate key {key!r}"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# --- the published schema -----------------------------------------------------------------------------------

_VARIABLE_SCHEMA = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
_NOT_TEXT = ("int", "float", "decimal", "bool", "date", "literal")


class _SchemaWithVariables(GenerateJsonSchema):
    """Where a value is not free text (a number, a boolean, a choice, a date, a URL), a `${VAR}` string is
    accepted too, since substitution happens before validation: editors must not flag a valid file."""

    def generate_inner(self, schema: Any) -> JsonSchemaValue:
        plain = super().generate_inner(schema)
        if schema["type"] in _NOT_TEXT or (schema["type"] == "str" and "pattern" in plain):
            return {"anyOf": [plain, _VARIABLE_SCHEMA]}
        return plain


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `chargeback.yaml` (draft 2020-12), for editors and `chargeback.schema.json`."""
    schema = adapter(AppConfig).json_schema(schema_generator=_SchemaWithVariables)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_FILE,
        "title": "chargeback-assets configuration (chargeback.yaml)",
        **schema,
    }
