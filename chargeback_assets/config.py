"""The one YAML config file -> validated, immutable settings.

`load_config` reads the file (`$CHARGEBACK_CONFIG`, default `chargeback.yaml`), substitutes `${VAR}` and
`${VAR:-default}` in every string value, and validates everything before any asset runs, so that a bad key
fails at load time with its key path instead of in the middle of a backfill. Each tenant's `plugin_settings`
is validated by its ecosystem's parser (`chargeback_assets.ecosystems.SETTINGS_PARSERS`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from chargeback_assets.ecosystems import SETTINGS_PARSERS
from chargeback_assets.ecosystems.confluent_cloud.settings import ConfluentCloudSettings
from chargeback_assets.ecosystems.generic_metrics.settings import GenericMetricsSettings
from chargeback_assets.ecosystems.retry import DEFAULT_RETRY_BUDGET_SECONDS, MAX_RETRY_BUDGET_SECONDS
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings
from chargeback_assets.settings_reader import Section, defaults, describe, join, reject_duplicates
from chargeback_assets.validation import ConfigError, Secret

CONFIG_ENV_VAR = "CHARGEBACK_CONFIG"
DEFAULT_CONFIG_FILE = "chargeback.yaml"
DEFAULT_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
EMITTER_TYPES = ("csv", "prometheus")
AGGREGATIONS = ("daily", "monthly")
CKU_USAGE_RATIO = "kafka_cku_usage_ratio"
CKU_SHARED_RATIO = "kafka_cku_shared_ratio"
CKU_RATIO_DEFAULTS = {CKU_USAGE_RATIO: Decimal("0.70"), CKU_SHARED_RATIO: Decimal("0.30")}
RATIO_TOLERANCE = Decimal("0.0001")
SECRET_KEY_NAMES = ("secret", "password", "bearer_token")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CALLABLE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
_PARTITION_KEY_FORBIDDEN = ("|", ",", "[", "]")
_OWNER = re.compile(r"team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+")
_TAG_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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


TAG_VALUE_MAX_LENGTH = 256

Ecosystem = Literal["confluent_cloud", "self_managed_kafka", "generic_metrics"]
PluginSettings = ConfluentCloudSettings | SelfManagedKafkaSettings | GenericMetricsSettings


def _frozen_map() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StorageConfig:
    path: Path = Path("data/chargeback.db")


@dataclass(frozen=True, slots=True)
class FeaturesConfig:
    max_parallel_tenants: int = 4


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """How patient a run is with its sources (billing, inventory, metrics APIs)."""

    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    """Time one run may spend retrying transient source faults, all tenants and requests together; 0 is
    no retries at all. When it runs out, the source's error stands (metrics then fall back visibly)."""


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = DEFAULT_LOG_FORMAT
    per_module_levels: Mapping[str, str] = field(default_factory=_frozen_map)


@dataclass(frozen=True, slots=True)
class OrchestrationConfig:
    """When the daily schedule fires (UTC cron) and how often the billing-change sensor looks."""

    schedule_cron: str = "0 3 * * *"
    billing_sensor_interval_seconds: int = 3600
    asset_owners: tuple[str, ...] = ()
    """Shown as the owners of every asset in the Dagster UI: e-mail addresses or `team:<name>`."""


@dataclass(frozen=True, slots=True)
class EmitterConfig:
    """`name` keys the emission state; `params` reach the emitter as given, secret-named values as Secret."""

    type: Literal["csv", "prometheus"]
    name: str
    aggregation: Literal["daily", "monthly"] = "daily"
    lookback_days: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TagsConfig:
    """Custom tags by identity id and by resource id: {id: {key: value}}."""

    identities: Mapping[str, Mapping[str, str]] = field(default_factory=_frozen_map)
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=_frozen_map)


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantConfig:
    name: str
    ecosystem: Ecosystem
    tenant_id: str
    start_date: date
    recalculation_days: int = 7
    settle_days: int = 3
    retention_days: int = 250
    allocation_retry_limit: int = 3
    zero_gather_deletion_threshold: int = -1
    gather_failure_threshold: int = 5
    unallocated_warn_fraction: Decimal = Decimal("0.25")
    allocator_params: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType(dict(CKU_RATIO_DEFAULTS))
    )
    allocator_overrides: Mapping[str, str] = field(default_factory=_frozen_map)
    identity_resolution_overrides: Mapping[str, str] = field(default_factory=_frozen_map)
    plugin_settings: PluginSettings
    emitters: tuple[EmitterConfig, ...] = ()
    tags: TagsConfig = field(default_factory=TagsConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppConfig:
    storage: StorageConfig = field(default_factory=StorageConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    tenants: Mapping[str, TenantConfig]


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> AppConfig:
    """Reads and validates the config file; `path` None means `$CHARGEBACK_CONFIG`, else `chargeback.yaml`."""
    environ = os.environ if environ is None else environ
    file = Path(path if path is not None else environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), f"config file not found (pass a path or set {CONFIG_ENV_VAR})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(file), f"cannot read config file: {error}") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        # Only the problem and its position: the YAML error's snippet of the line could show a secret.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(file), f"invalid YAML{where}: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(str(file), f"invalid YAML: {type(error).__name__}") from None
    return parse_config(raw if raw is not None else {}, environ, source=str(file))


def parse_config(raw: Mapping[str, Any], environ: Mapping[str, str], source: str = "<config>") -> AppConfig:
    """Validates an already-loaded YAML document; `source` names it in errors about the whole document."""
    with Section(substitute(raw, environ, ""), "", label=source) as root:
        return AppConfig(
            storage=_read_storage(root.section("storage")),
            features=_read_features(root.section("features")),
            sources=_read_sources(root.section("sources")),
            logging=_read_logging(root.section("logging")),
            orchestration=_read_orchestration(root.section("orchestration")),
            tenants=_read_tenants(root.section("tenants")),
        )


def substitute(value: Any, environ: Mapping[str, str], path: str) -> Any:
    """Replaces `${VAR}` / `${VAR:-default}` in every string value (never in keys).

    As in a shell, the default also applies when the variable is set but empty.
    """
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            found = environ.get(name)
            if found is None and fallback is None:
                raise ConfigError(path, f"environment variable {name} is not set and has no default")
            return found or fallback or ""

        return _VARIABLE.sub(lookup, value)
    if isinstance(value, Mapping):
        return {key: substitute(item, environ, join(path, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, environ, join(path, index)) for index, item in enumerate(value)]
    return value


def _read_storage(section: Section) -> StorageConfig:
    with section:
        return StorageConfig(path=Path(section.string("path", str(defaults(StorageConfig)["path"]))))


def _read_features(section: Section) -> FeaturesConfig:
    default = defaults(FeaturesConfig)
    with section:
        return FeaturesConfig(
            max_parallel_tenants=section.integer(
                "max_parallel_tenants", default["max_parallel_tenants"], ge=1, le=64
            )
        )


def _read_sources(section: Section) -> SourcesConfig:
    default = defaults(SourcesConfig)
    with section:
        return SourcesConfig(
            retry_budget_seconds=section.number(
                "retry_budget_seconds", default["retry_budget_seconds"], ge=0, le=MAX_RETRY_BUDGET_SECONDS
            )
        )


def _read_logging(section: Section) -> LoggingConfig:
    default = defaults(LoggingConfig)
    with section:
        level = section.string("level", default["level"], choices=LOG_LEVELS, ignore_case=True)
        log_format = section.string("format", default["format"])
        try:
            logging.Formatter(log_format, validate=True)
        except ValueError as error:
            raise ConfigError(section.at("format"), f"not a valid logging format: {error}") from None
        with section.section("per_module_levels") as modules:
            per_module = {
                module: modules.string(module, choices=LOG_LEVELS, ignore_case=True) for module in modules
            }
        return LoggingConfig(level=level, format=log_format, per_module_levels=MappingProxyType(per_module))


def _read_orchestration(section: Section) -> OrchestrationConfig:
    default = defaults(OrchestrationConfig)
    with section:
        cron = section.string("schedule_cron", default["schedule_cron"])
        fields = cron.split()
        if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(item) for item in fields):
            raise ConfigError(
                section.at("schedule_cron"),
                f"must be a cron expression of 5 fields (minute hour day month weekday), got {cron!r}",
            )
        return OrchestrationConfig(
            schedule_cron=cron,
            billing_sensor_interval_seconds=section.integer(
                "billing_sensor_interval_seconds", default["billing_sensor_interval_seconds"], ge=30
            ),
            asset_owners=_read_owners(section),
        )


def _read_owners(section: Section) -> tuple[str, ...]:
    """Dagster accepts an owner only as an e-mail address or `team:<name>`; say so at load, not at import."""
    owners = section.value("asset_owners", [])
    if not isinstance(owners, list):
        raise ConfigError(section.at("asset_owners"), f"expected a list, got {describe(owners)}")
    for index, owner in enumerate(owners):
        if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
            raise ConfigError(
                f"{section.at('asset_owners')}[{index}]",
                f"must be an e-mail address or team:<name>, got {owner!r}",
            )
    return tuple(owners)


def _read_tenants(section: Section) -> Mapping[str, TenantConfig]:
    with section:
        names = list(section)
        if not names:
            raise ConfigError(section.path, "no tenants configured")
        for name in names:
            _check_partition_key(section.path, name)
        tenants = {name: _read_tenant(name, section.section(name, required=True)) for name in names}
    reject_duplicates(
        ((join(section.at(name), "tenant_id"), tenant.tenant_id) for name, tenant in tenants.items()),
        "tenant_id",
    )
    return MappingProxyType(tenants)


def _check_partition_key(path: str, name: str) -> None:
    """Tenant names are Dagster partition keys, which may not be blank nor hold the multi-key separators."""
    if not name.strip():
        raise ConfigError(path, f"tenant name {name!r} cannot be a partition key: it is empty or whitespace")
    for character in _PARTITION_KEY_FORBIDDEN:
        if character in name:
            raise ConfigError(
                path,
                f"tenant name {name!r} cannot be a partition key: it contains {character!r} (no | , [ ])",
            )


def _read_tenant(name: str, section: Section) -> TenantConfig:
    default = defaults(TenantConfig)
    with section:
        ecosystem = section.string("ecosystem", choices=tuple(SETTINGS_PARSERS))
        parser = SETTINGS_PARSERS[ecosystem]
        return TenantConfig(
            name=name,
            ecosystem=ecosystem,
            tenant_id=section.string("tenant_id"),
            start_date=section.iso_date("start_date"),
            recalculation_days=section.integer(
                "recalculation_days", default["recalculation_days"], ge=1, le=62
            ),
            settle_days=section.integer("settle_days", default["settle_days"], ge=0, le=30),
            retention_days=section.integer("retention_days", default["retention_days"], ge=1, le=730),
            allocation_retry_limit=section.integer(
                "allocation_retry_limit", default["allocation_retry_limit"], ge=1, le=10
            ),
            zero_gather_deletion_threshold=section.integer(
                "zero_gather_deletion_threshold", default["zero_gather_deletion_threshold"], ge=-1
            ),
            gather_failure_threshold=section.integer(
                "gather_failure_threshold", default["gather_failure_threshold"], gt=0
            ),
            unallocated_warn_fraction=section.decimal(
                "unallocated_warn_fraction", default["unallocated_warn_fraction"], ge=0, le=1
            ),
            allocator_params=_read_allocator_params(section.section("allocator_params")),
            allocator_overrides=_read_callable_paths(section.section("allocator_overrides"), None),
            identity_resolution_overrides=_read_callable_paths(
                section.section("identity_resolution_overrides"), parser.service_types
            ),
            plugin_settings=parser.parse(section.value("plugin_settings", {}), section.at("plugin_settings")),
            emitters=_read_emitters(section),
            tags=_read_tags(section.section("tags")),
        )


def _read_allocator_params(section: Section) -> Mapping[str, Any]:
    """Free-form knobs for allocators; numbers stay exact (ints as int, the rest as Decimal, never float).

    The CKU split must sum to 1; a side that is not given takes its default, so one side alone is checked
    against the other's default.
    """
    with section:
        params: dict[str, Any] = {}
        for key in section:
            if key.endswith("_ratio"):
                bounds = {"ge": 0, "le": 1} if key in CKU_RATIO_DEFAULTS else {}
                params[key] = section.decimal(key, **bounds)
                continue
            value = section.value(key)
            if not isinstance(value, (str, int, float)):
                raise ConfigError(
                    section.at(key), f"expected a number, string or boolean, got {describe(value)}"
                )
            params[key] = section.decimal(key) if isinstance(value, float) else value
    for key, value in CKU_RATIO_DEFAULTS.items():
        params.setdefault(key, value)
    total = params[CKU_USAGE_RATIO] + params[CKU_SHARED_RATIO]
    if abs(total - 1) > RATIO_TOLERANCE:
        raise ConfigError(section.path, f"{CKU_USAGE_RATIO} + {CKU_SHARED_RATIO} must be 1.0, got {total}")
    return MappingProxyType(params)


def _read_callable_paths(section: Section, allowed_keys: frozenset[str] | None) -> Mapping[str, str]:
    """`{key: "package.module:callable"}`; only the form is checked here, importing is the engine's job."""
    with section:
        paths: dict[str, str] = {}
        for key in section:
            if allowed_keys is not None and key not in allowed_keys:
                raise ConfigError(
                    section.at(key), f"unknown service type; allowed: {', '.join(sorted(allowed_keys))}"
                )
            value = section.string(key)
            if not _CALLABLE_PATH.fullmatch(value):
                raise ConfigError(
                    section.at(key), f"must be 'package.module:callable' (with a colon), got {value!r}"
                )
            paths[key] = value
        return MappingProxyType(paths)


def _read_emitters(tenant: Section) -> tuple[EmitterConfig, ...]:
    emitters = [(item, _read_emitter(item)) for item in tenant.sections("emitters")]
    reject_duplicates(((item.at("name"), emitter.name) for item, emitter in emitters), "emitter name")
    return tuple(emitter for _, emitter in emitters)


def _read_emitter(section: Section) -> EmitterConfig:
    default = defaults(EmitterConfig)
    with section:
        emitter_type = section.string("type", choices=EMITTER_TYPES)
        with section.section("params") as params:
            given = {key: params.value(key, None) for key in params}
        return EmitterConfig(
            type=emitter_type,
            name=section.string("name", emitter_type),
            aggregation=section.string("aggregation", default["aggregation"], choices=AGGREGATIONS),
            lookback_days=section.integer("lookback_days", None, ge=1),
            params=_protect_secrets(given),
        )


def _protect_secrets(params: dict[str, Any]) -> dict[str, Any]:
    """Wraps secret-named string values of pass-through params, at any depth, so emitters cannot log them."""
    protected: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            protected[key] = _protect_secrets(value)
        elif isinstance(value, str) and _is_secret_name(key):
            protected[key] = Secret(value)
        else:
            protected[key] = value
    return protected


def _is_secret_name(key: str) -> bool:
    return any(key == name or key.endswith("_" + name) for name in SECRET_KEY_NAMES)


def _read_tags(section: Section) -> TagsConfig:
    with section:
        return TagsConfig(
            identities=_read_tag_table(section.section("identities")),
            resources=_read_tag_table(section.section("resources")),
        )


def _read_tag_table(section: Section) -> Mapping[str, Mapping[str, str]]:
    with section:
        return MappingProxyType({entity: _read_tag_values(section.section(entity)) for entity in section})


def _read_tag_values(section: Section) -> Mapping[str, str]:
    with section:
        tags: dict[str, str] = {}
        for key in section:
            if (problem := tag_problem(key)) is not None:
                raise ConfigError(section.at(key), problem)
            value = section.string(key)
            if (problem := tag_problem(key, value)) is not None:
                raise ConfigError(section.at(key), problem)
            tags[key] = value
        return MappingProxyType(tags)


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""

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
