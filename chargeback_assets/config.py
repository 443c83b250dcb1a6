"""The one YAML config file -> validated, immutable settings, one pydantic model per section.

`load_config` reads the file (`$CHARGEBACK_CONFIG`, default `chargeback.yaml`), substitutes `${VAR}` and
`${VAR:-default}` in every string value, and validates everything before any asset runs: each tenant's
`plugin_settings` by its ecosystem's model, each emitter's `params` by the emitter's, and each override by
importing it. A bad file fails at load with every problem, each naming the file and its key path. The models
also give the published JSON Schema (`json_schema`, `chargeback.schema.json`).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema
from pydantic_core import core_schema

from chargeback_assets.ecosystems import ECOSYSTEMS
from chargeback_assets.ecosystems.retry import DEFAULT_RETRY_BUDGET_SECONDS, MAX_RETRY_BUDGET_SECONDS
from chargeback_assets.emitters.prometheus import label_clashes
from chargeback_assets.emitters.registry import EMITTER_PARAMS
from chargeback_assets.engine.loading import LoadError, load_allocator, load_resolver
from chargeback_assets.validation import (
    ConfigError,
    Exact,
    Integer,
    Invalid,
    IsoDate,
    Loc,
    Seconds,
    Text,
    _adapter,
    join,
    settings,
    unique,
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
"""A document whose aliases expand beyond this many values is refused before it is walked (alias bombs)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OWNER = re.compile(r"team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+")
_TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FILE_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PARTITION_KEY_FORBIDDEN = ("|", ",", "[", "]")
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
_CRON_NAMES = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "weekday": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_CRON_ITEM = re.compile(r"(\*|(\w+)(?:-(\w+))?)(?:/(\d+))?")


# --- rules shared with the tags command line ---------------------------------------------------------------


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


def _tag_key(key: str) -> str:
    if (problem := tag_problem(key)) is not None:
        raise Invalid(problem)
    return key


def _tag_value(value: str) -> str:
    if (problem := tag_problem("k", value)) is not None:
        raise Invalid(problem, show=False)
    return value


def _tenant_name(name: str) -> str:
    """Tenant names are Dagster partition keys: not blank, no multi-key separators, one printable line."""
    why = None
    if not name.strip():
        why = "it is empty or whitespace"
    elif _CONTROL_CHARACTER.search(name):
        why = "it contains a control character (a newline, NUL, ...)"
    elif forbidden := [c for c in _PARTITION_KEY_FORBIDDEN if c in name]:
        why = f"it contains {forbidden[0]!r} (no | , [ ])"
    if why:
        raise Invalid(f"tenant name {name!r} cannot be a partition key: {why}", show=False)
    return name


def _file_safe(value: str) -> str:
    if not _FILE_SAFE_ID.fullmatch(value):
        raise Invalid(
            "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(it names output files)"
        )
    return value


def _level(value: Any) -> Any:
    """Levels in any case; a wrong one is reported as written."""
    return value.upper() if isinstance(value, str) and value.upper() in LOG_LEVELS else value


def _log_format(value: str) -> str:
    try:
        logging.Formatter(value, validate=True)
    except ValueError as error:
        raise Invalid(f"not a valid logging format ({error})", show=False) from None
    return value


def _cron(value: str) -> str:
    """Five fields (minute hour day month weekday), each a list of `*`, `a`, `a-b`, with an optional `/n`."""
    fields = value.split()
    if len(fields) != len(_CRON_FIELDS):
        raise Invalid("must be a cron expression of 5 fields (minute hour day month weekday)")
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.fullmatch(item)
            bounds = [match.group(2), match.group(3)] if match else []
            numbers = [_cron_number(bound, name) for bound in bounds if bound is not None]
            if not match or None in numbers or match.group(4) == "0":
                raise Invalid(f"cron {name} field {text!r} is not valid")
            if any(not low <= number <= high for number in numbers if number is not None):
                raise Invalid(f"cron {name} field {text!r} is out of range {low}-{high}")
    return value


def _cron_number(text: str, field_name: str) -> int | None:
    if text.isdigit():
        return int(text)
    names = _CRON_NAMES.get(field_name, [])
    lowered = text.lower()
    return names.index(lowered) + (field_name == "month") if lowered in names else None


def _owner(value: str) -> str:
    if not _OWNER.fullmatch(value):
        raise Invalid("must be an e-mail address or team:<name>")
    return value


def _database_file(path: Path) -> Path:
    if path.is_dir():
        raise Invalid("is a directory; give the database file, e.g. data/chargeback.db")
    return path


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


LogLevel = Annotated[Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], BeforeValidator(_level)]
Fraction = Annotated[Exact, Field(ge=0, le=1)]
TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]
TagTable = Mapping[str, Mapping[TagKey, TagValue]]
TenantName = Annotated[str, AfterValidator(_tenant_name)]
FileSafeId = Annotated[Text, AfterValidator(_file_safe)]
DatabaseFile = Annotated[Path, BeforeValidator(_blank_to_none), AfterValidator(_database_file)]


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


# --- sections -----------------------------------------------------------------------------------------------


@settings
class StorageConfig:
    path: DatabaseFile = Path("data/chargeback.db")


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
    format: Annotated[Text, AfterValidator(_log_format)] = DEFAULT_LOG_FORMAT
    per_module_levels: Mapping[str, LogLevel] = field(default_factory=_empty)


@settings
class OrchestrationConfig:
    """When the daily schedule fires (UTC cron) and how often the billing and emission-retry sensors look."""

    schedule_cron: Annotated[Text, AfterValidator(_cron)] = "0 3 * * *"
    billing_sensor_interval_seconds: Annotated[Integer, Field(ge=30)] = 3600
    emission_retry_interval_seconds: Annotated[Integer, Field(ge=30)] = 600
    asset_owners: tuple[Annotated[str, AfterValidator(_owner)], ...] = ()
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
            number = _exact_number(value)
            if number is None:
                raise Invalid("expected a number", key)
            if key in CKU_RATIO_DEFAULTS and not 0 <= number <= 1:
                raise Invalid("must be between 0 and 1", key)
            value = number
        elif not isinstance(value, (str, int)):
            raise Invalid("expected a number, string or boolean", key)
        params[key] = value
    total = params[CKU_USAGE_RATIO] + params[CKU_SHARED_RATIO]
    if abs(total - 1) > RATIO_TOLERANCE:
        raise Invalid(f"{CKU_USAGE_RATIO} + {CKU_SHARED_RATIO} must be 1.0, got {total}", show=False)
    return MappingProxyType(params)


def _exact_number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _importable(load: Any) -> AfterValidator:
    def check(path: str) -> str:
        try:
            load(path)
        except LoadError as error:
            raise Invalid(error.reason) from None
        return path

    return AfterValidator(check)


AllocatorParams = Annotated[
    Mapping[str, Any],
    AfterValidator(_allocator_params),
    WithJsonSchema(
        {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean"]}},
        mode="validation",
    ),
]
AllocatorPath = Annotated[Text, _importable(load_allocator)]
ResolverPath = Annotated[Text, _importable(load_resolver)]


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
    zero_gather_deletion_threshold: Annotated[Integer, Field(ge=-1)] = -1
    gather_failure_threshold: Annotated[Integer, Field(gt=0)] = 5
    unallocated_warn_fraction: Fraction = Decimal("0.25")
    unattributed_warn_fraction: Fraction = Decimal("0.15")
    max_line_amount: Annotated[Exact, Field(gt=0)] = Decimal("10000000")
    allocator_params: AllocatorParams = field(
        default_factory=lambda: MappingProxyType(dict(CKU_RATIO_DEFAULTS))
    )
    allocator_overrides: Mapping[str, AllocatorPath] = field(default_factory=_empty)
    identity_resolution_overrides: Mapping[str, ResolverPath] = field(default_factory=_empty)
    plugin_settings: Any
    emitters: tuple[EmitterConfig, ...] = ()
    tags: TagsConfig = field(default_factory=TagsConfig)

    @model_validator(mode="after")
    def _overrides_and_emitters(self) -> TenantConfig:
        unique(
            ((("emitters", i, "name"), emitter.name) for i, emitter in enumerate(self.emitters)),
            "emitter name",
        )
        ecosystem = ECOSYSTEMS.get(self.ecosystem)
        if ecosystem is None:  # a TenantConfig made in code, not from a file
            return self
        owned = ecosystem.product_types(self.plugin_settings)
        for product_type in self.allocator_overrides:
            if product_type not in owned:
                near = difflib.get_close_matches(product_type, owned, n=1)
                hint = f"did you mean {near[0]}? " if near else ""
                known = ", ".join(sorted(owned))
                raise Invalid(
                    f"{self.ecosystem} has no product type {product_type!r}; {hint}known: {known}",
                    "allocator_overrides",
                    product_type,
                    show=False,
                )
        return self


def _tenant_model(name: str) -> type[TenantConfig]:
    """A TenantConfig whose `plugin_settings`, override keys and emitters are those of one ecosystem."""
    ecosystem = ECOSYSTEMS[name]
    services = Literal.__getitem__(tuple(sorted(ecosystem.service_types)))  # type: ignore[attr-defined]
    annotations = {
        "ecosystem": Literal[name],
        "plugin_settings": ecosystem.settings,
        "identity_resolution_overrides": Mapping[services, ResolverPath],  # type: ignore[valid-type]
        "emitters": tuple[EMITTER_MODEL, ...],
    }
    title = "".join(part.title() for part in name.split("_")) + "Tenant"
    namespace = {"__annotations__": annotations, "__module__": __name__, "__qualname__": title}
    namespace |= {"identity_resolution_overrides": field(default_factory=_empty), "emitters": ()}
    return settings(type(title, (TenantConfig,), namespace), kw_only=True)


def _emitter_model(emitter_type: str) -> type[EmitterConfig]:
    title = emitter_type.title() + "EmitterConfig"
    annotations = {"type": Literal[emitter_type], "params": EMITTER_PARAMS[emitter_type]}
    namespace = {"__annotations__": annotations, "__module__": __name__, "__qualname__": title}
    return settings(type(title, (EmitterConfig,), namespace), kw_only=True)


EMITTER_MODELS = {name: _emitter_model(name) for name in EMITTER_PARAMS}
EMITTER_MODEL = Annotated[Union[tuple(EMITTER_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
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
    tenants: Annotated[Mapping[TenantName, TENANT_MODEL], AfterValidator(_some_tenants)] = Field(
        default_factory=_empty, validate_default=True
    )

    def __post_init__(self) -> None:
        for name, tenant in self.tenants.items():
            object.__setattr__(tenant, "name", name)

    @model_validator(mode="after")
    def _tenant_ids_are_unique(self) -> AppConfig:
        unique(
            ((("tenants", name, "tenant_id"), t.tenant_id) for name, t in self.tenants.items()), "tenant_id"
        )
        return self


# --- loading ------------------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> AppConfig:
    """Reads and validates the config file; `path` None means `$CHARGEBACK_CONFIG`, else `chargeback.yaml`."""
    environ = os.environ if environ is None else environ
    file = Path(path if path is not None else environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)
    source = str(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "", f"config file not found (pass a path or set {CONFIG_ENV_VAR})", source=source
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            "", f"not UTF-8 text (byte {error.start} is 0x{error.object[error.start]:02x})", source=source
        ) from None
    except OSError as error:
        raise ConfigError(
            "", f"cannot read the config file: {error.strerror or error}", source=source
        ) from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        # Only the problem and its position: the YAML error's snippet of the line could show a secret.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            "", f"invalid YAML{where}: {error.problem or error.context}", source=source
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError("", f"invalid YAML: {type(error).__name__}", source=source) from None
    return parse_config(raw if raw is not None else {}, environ, source=source)


def parse_config(raw: object, environ: Mapping[str, str], source: str | None = None) -> AppConfig:
    """Validates an already-loaded YAML document; `source` (the file) starts every error line."""
    if _expanded_size(raw, {}) > MAX_EXPANDED_VALUES:
        raise ConfigError(
            "",
            f"the document expands to more than {MAX_EXPANDED_VALUES} values (YAML aliases?)",
            source=source,
        )
    hidden: set[Loc] = set()
    substituted = substitute(raw, environ, (), hidden, source)
    return validate(AppConfig, substituted, source=source, hidden=hidden)


def substitute(value: Any, environ: Mapping[str, str], at: Loc, hidden: set[Loc], source: str | None) -> Any:
    """Replaces `${VAR}` / `${VAR:-default}` in every string value (never in keys).

    As in a shell, the default also applies when the variable is set but empty. The key paths of
    substituted values go to `hidden`: errors never show them.
    """
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            found = environ.get(name)
            if found is None and fallback is None:
                raise ConfigError(
                    _path(at), f"environment variable {name} is not set and has no default", source=source
                )
            hidden.add(at)
            return found or fallback or ""

        return _VARIABLE.sub(lookup, value)
    if isinstance(value, Mapping):
        return {
            key: substitute(item, environ, (*at, key), hidden, source)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list):
        return [substitute(item, environ, (*at, index), hidden, source) for index, item in enumerate(value)]
    return value


def _path(at: Loc) -> str:
    path = ""
    for key in at:
        path = join(path, key if isinstance(key, int) else str(key))
    return path


def _expanded_size(value: object, sizes: dict[int, int]) -> int:
    """How many values the document has once its aliases are expanded (each shared node counted per use)."""
    if not isinstance(value, (Mapping, list)):
        return 1
    if id(value) not in sizes:
        sizes[id(value)] = MAX_EXPANDED_VALUES + 1  # a node that holds itself expands forever
        items = value.values() if isinstance(value, Mapping) else value
        total = 1
        for item in items:
            total = min(total + _expanded_size(item, sizes), MAX_EXPANDED_VALUES + 1)
        sizes[id(value)] = total
    return sizes[id(value)]


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
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# --- the published schema -----------------------------------------------------------------------------------

_VARIABLE_SCHEMA = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


class _SchemaWithVariables(GenerateJsonSchema):
    """Where a value is not free text (a number, a boolean, a choice, a date, a URL), a `${VAR}` string is
    accepted too, since substitution happens before validation: editors must not flag a valid file."""

    def _or_variable(self, schema: JsonSchemaValue) -> JsonSchemaValue:
        return {"anyOf": [schema, _VARIABLE_SCHEMA]}

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return self._or_variable(super().int_schema(schema))

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        return self._or_variable(super().float_schema(schema))

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return self._or_variable(super().decimal_schema(schema))

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        return self._or_variable(super().bool_schema(schema))

    def date_schema(self, schema: core_schema.DateSchema) -> JsonSchemaValue:
        return self._or_variable(super().date_schema(schema))

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        return self._or_variable(super().literal_schema(schema))

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        plain = super().str_schema(schema)
        return self._or_variable(plain) if "pattern" in plain else plain


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `chargeback.yaml` (draft 2020-12), for editors and `chargeback.schema.json`."""
    schema = _adapter(AppConfig).json_schema(schema_generator=_SchemaWithVariables)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_FILE,
        "title": "chargeback-assets configuration (chargeback.yaml)",
        **schema,
    }
