from __future__ import annotations

import ast
import copy
import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargeback_assets.config import (
    TENANT_MODELS,
    AppConfig,
    FeaturesConfig,
    OrchestrationConfig,
    SourcesConfig,
    StorageConfig,
    load_config,
    parse_config,
)
from chargeback_assets.ecosystems.confluent_cloud.settings import CCloudApi, ConfluentCloudSettings
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings
from chargeback_assets.emitters.csv import CsvParams
from chargeback_assets.emitters.prometheus import PrometheusParams
from chargeback_assets.redaction import scrub
from chargeback_assets.validation import ConfigError, Secret

EXAMPLE = Path(__file__).resolve().parents[1] / "chargeback.example.yaml"
SECRET_VALUE = "s3cr3t-do-not-show"


def tenant(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "ecosystem": "confluent_cloud",
        "tenant_id": "t-prod",
        "start_date": "2026-01-01",
        "plugin_settings": {"ccloud_api": {"key": "KEY", "secret": SECRET_VALUE}},
    }
    raw.update(overrides)
    return raw


def config(**tenant_overrides: Any) -> dict[str, Any]:
    return {"tenants": {"prod": tenant(**tenant_overrides)}}


def parse(raw: dict[str, Any], environ: dict[str, str] | None = None) -> AppConfig:
    return parse_config(raw, environ or {})


def parse_error(raw: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(raw, environ)
    return str(caught.value)


# --- the example file -------------------------------------------------------------------------------------


def test_example_file_parses_with_its_environment() -> None:
    loaded = load_config(EXAMPLE, {"CCLOUD_API_KEY": "ABC123"})

    assert list(loaded.tenants) == ["acme-prod", "onprem-kafka"]
    assert loaded.sources.retry_budget_seconds == 300
    acme = loaded.tenants["acme-prod"]
    assert isinstance(acme.plugin_settings, ConfluentCloudSettings)
    assert acme.plugin_settings.api_key == "ABC123"
    assert acme.plugin_settings.api_secret == Secret("sandbox-secret")
    assert acme.plugin_settings.http.base_url == "http://127.0.0.1:8765"
    assert acme.plugin_settings.metrics is not None
    assert acme.plugin_settings.metrics.url == "http://127.0.0.1:8765"
    assert [(e.type, e.name) for e in acme.emitters] == [
        ("csv", "csv"),
        ("prometheus", "prometheus"),
        ("focus", "focus"),
    ]
    assert acme.emitters[1].params == PrometheusParams(output_dir="data/exports/prometheus")
    assert acme.tags.identities["sa-00001"] == {"team": "payments", "cost_center": "4711"}
    assert acme.tags.resources["lkc-00001"] == {"env": "production"}
    onprem = loaded.tenants["onprem-kafka"]
    assert isinstance(onprem.plugin_settings, SelfManagedKafkaSettings)
    assert onprem.plugin_settings.rates.compute_hourly_rate == Decimal("0.08")
    assert onprem.plugin_settings.cost_model.currency == "USD"
    assert onprem.emitters[0].aggregation == "monthly"


def test_example_file_follows_its_environment_variables() -> None:
    environ = {
        "CCLOUD_API_KEY": "K",
        "CCLOUD_BASE_URL": "https://api.example.test/",
        "CCLOUD_API_SECRET": "x",
    }
    acme = load_config(EXAMPLE, environ).tenants["acme-prod"].plugin_settings

    assert isinstance(acme, ConfluentCloudSettings)
    assert acme.http.base_url == "https://api.example.test"
    assert acme.api_secret.reveal() == "x"


def test_example_file_needs_the_api_key_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE, {})
    assert str(caught.value) == (
        f"{EXAMPLE}: tenants.acme-prod.plugin_settings.ccloud_api.key: "
        "environment variable CCLOUD_API_KEY is not set and has no default"
    )


# --- defaults ---------------------------------------------------------------------------------------------


def test_minimal_config_takes_every_default() -> None:
    loaded = parse(config())

    assert loaded.storage.path == Path("data/chargeback.db")
    assert loaded.features.max_parallel_tenants == 4
    assert loaded.sources.retry_budget_seconds == 300
    assert (loaded.logging.level, loaded.logging.per_module_levels) == ("INFO", {})
    assert loaded.logging.format == "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
    assert loaded.orchestration.schedule_cron == "0 3 * * *"
    assert loaded.orchestration.billing_sensor_interval_seconds == 3600
    assert loaded.orchestration.emission_retry_interval_seconds == 600
    prod = loaded.tenants["prod"]
    assert (prod.name, prod.ecosystem, prod.tenant_id, prod.start_date) == (
        "prod",
        "confluent_cloud",
        "t-prod",
        date(2026, 1, 1),
    )
    assert prod.plugin_settings == ConfluentCloudSettings(ccloud_api=CCloudApi("KEY", Secret(SECRET_VALUE)))
    assert (prod.recalculation_days, prod.settle_days, prod.retention_days) == (7, 3, 250)
    assert (
        prod.allocation_retry_limit,
        prod.zero_gather_deletion_threshold,
        prod.gather_failure_threshold,
    ) == (
        3,
        -1,
        5,
    )
    assert prod.unallocated_warn_fraction == Decimal("0.25")
    assert (prod.unattributed_warn_fraction, prod.max_line_amount) == (Decimal("0.15"), Decimal("10000000"))
    assert prod.retention_max_days_per_run == 7
    assert prod.allocator_params == {
        "kafka_cku_usage_ratio": Decimal("0.70"),
        "kafka_cku_shared_ratio": Decimal("0.30"),
    }
    assert prod.emitters == ()


def test_top_level_sections_are_read() -> None:
    raw = config()
    raw.update(
        storage={"path": "/var/lib/cb/cb.db"},
        features={"max_parallel_tenants": 8},
        sources={"retry_budget_seconds": 45.5},
        logging={"level": "debug", "format": "%(message)s", "per_module_levels": {"urllib3": "warning"}},
        orchestration={"schedule_cron": "30 4 * * 1-5", "billing_sensor_interval_seconds": 30},
    )
    loaded = parse(raw)

    assert loaded.storage.path == Path("/var/lib/cb/cb.db")
    assert loaded.features.max_parallel_tenants == 8
    assert loaded.sources.retry_budget_seconds == 45.5
    assert (loaded.logging.level, loaded.logging.format) == ("DEBUG", "%(message)s")
    assert loaded.logging.per_module_levels == {"urllib3": "WARNING"}
    assert loaded.orchestration.schedule_cron == "30 4 * * 1-5"
    assert loaded.orchestration.billing_sensor_interval_seconds == 30


def test_yaml_dates_and_iso_strings_are_both_accepted() -> None:
    assert parse(config(start_date=date(2025, 2, 3))).tenants["prod"].start_date == date(2025, 2, 3)
    assert parse(config(start_date="2025-02-03")).tenants["prod"].start_date == date(2025, 2, 3)


# --- loading the file -------------------------------------------------------------------------------------


def test_path_comes_from_the_environment_variable(tmp_path: Path) -> None:
    file = tmp_path / "custom.yaml"
    file.write_text(
        "tenants:\n  prod:\n    ecosystem: confluent_cloud\n    tenant_id: t1\n    start_date: 2026-03-01\n"
        "    plugin_settings: {ccloud_api: {key: k, secret: s}}\n"
    )
    loaded = load_config(environ={"CHARGEBACK_CONFIG": str(file)})

    assert loaded.tenants["prod"].start_date == date(2026, 3, 1)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"CHARGEBACK_CONFIG": str(missing)})
    assert str(caught.value) == f"{missing}: config file not found (pass a path or set CHARGEBACK_CONFIG)"


def test_default_path_is_chargeback_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(environ={})
    assert caught.value.source == "chargeback.yaml"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "tenants:\n", "tenants: {}\n"])
def test_no_tenants_is_an_error(tmp_path: Path, text: str) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == f"{file}: tenants: no tenants configured"


def test_yaml_syntax_error_names_file_and_line_without_the_line_text(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(f"tenants:\n  prod:\n    secret: {SECRET_VALUE}: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    message = str(caught.value)
    assert message.startswith(f"{file}: invalid YAML at line 3, column ")
    assert SECRET_VALUE not in message


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "dup.yaml"
    file.write_text("tenants:\n  prod: {}\n  prod: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == f"{file}: invalid YAML at line 3, column 3: duplicate key 'prod'"


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(["a"], {}, source="my.yaml")  # type: ignore[arg-type]
    assert str(caught.value) == "my.yaml: expected a mapping, got list"


# --- ${VAR} substitution ----------------------------------------------------------------------------------


def test_variables_are_substituted_in_string_values() -> None:
    raw = config(tenant_id="${TENANT}-${SUFFIX:-x}", retention_days="${RETENTION:-100}")
    raw["storage"] = {"path": "${DATA:-}/cb.db"}
    loaded = parse(raw, {"TENANT": "acme"})

    assert loaded.tenants["prod"].tenant_id == "acme-x"
    assert loaded.tenants["prod"].retention_days == 100
    assert loaded.storage.path == Path("/cb.db")


def test_set_variable_wins_over_default_and_empty_value_takes_default() -> None:
    raw = config(tenant_id="${A:-fallback}")
    assert parse(raw, {"A": "given"}).tenants["prod"].tenant_id == "given"
    assert parse(raw, {"A": ""}).tenants["prod"].tenant_id == "fallback"


def test_default_ends_at_the_first_closing_brace() -> None:
    raw = config()
    raw["logging"] = {"format": "${MISSING:-%(message)s}}"}
    assert parse(raw).logging.format == "%(message)s}"


def test_keys_are_not_substituted() -> None:
    raw = {"tenants": {"${NAME}": tenant()}}
    assert list(parse(raw, {"NAME": "other"}).tenants) == ["${NAME}"]


def test_unset_variable_without_default_names_key_path_and_variable() -> None:
    raw = config()
    raw["tenants"]["prod"]["emitters"] = [{"type": "csv", "params": {"output_dir": "${OUT_DIR}"}}]
    assert parse_error(raw) == (
        "tenants.prod.emitters[0].params.output_dir: "
        "environment variable OUT_DIR is not set and has no default"
    )


# --- unknown keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            (),
            ": unknown key 'extra'; allowed keys: features, logging, orchestration, sources, storage, "
            "tenants",
        ),
        (("tenants", "prod"), "tenants.prod: unknown key 'extra'; allowed keys: allocation_retry_limit,"),
        (
            ("tenants", "prod", "plugin_settings", "ccloud_api"),
            "tenants.prod.plugin_settings.ccloud_api: unknown",
        ),
        (("storage",), "storage: unknown key 'extra'; allowed keys: path"),
        (("features",), "features: unknown key 'extra'; allowed keys: max_parallel_tenants"),
        (("sources",), "sources: unknown key 'extra'; allowed keys: retry_budget_seconds"),
        (
            ("orchestration",),
            "orchestration: unknown key 'extra'; allowed keys: asset_owners, billing_sensor_interval",
        ),
        (
            ("tenants", "prod", "tags"),
            "tenants.prod.tags: unknown key 'extra'; allowed keys: identities, resources",
        ),
    ],
)
def test_unknown_keys_are_rejected_with_the_allowed_ones(location: tuple[str, ...], expected: str) -> None:
    raw = config()
    target = raw
    for key in location:
        target = target.setdefault(key, {})
    target["extra"] = 1
    message = parse_error(raw)
    if not location:
        assert message == "<config>" + expected
    else:
        assert message.startswith(expected)


def test_each_unknown_key_is_named_with_the_allowed_keys() -> None:
    raw = config()
    raw["features"] = {"max_parallel": 2, "parallel": 3}
    assert parse_error(raw).splitlines() == [
        "features: unknown key 'max_parallel'; allowed keys: max_parallel_tenants",
        "features: unknown key 'parallel'; allowed keys: max_parallel_tenants",
    ]


def test_unknown_emitter_key_lists_allowed_keys() -> None:
    raw = config(emitters=[{"type": "csv", "lookback": 3, "params": {"output_dir": "out"}}])
    assert parse_error(raw) == (
        "tenants.prod.emitters[0]: unknown key 'lookback'; "
        "allowed keys: aggregation, lookback_days, name, params, type"
    )


# --- types ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("retention_days", "many", "tenants.prod.retention_days: expected an integer, got string 'many'"),
        ("retention_days", 1.5, "tenants.prod.retention_days: expected an integer, got number 1.5"),
        ("retention_days", True, "tenants.prod.retention_days: expected an integer, got boolean True"),
        ("settle_days", [3], "tenants.prod.settle_days: expected an integer, got list"),
        ("tenant_id", 42, "tenants.prod.tenant_id: expected a string, got integer 42"),
        (
            "unallocated_warn_fraction",
            "half",
            "tenants.prod.unallocated_warn_fraction: expected a number, got",
        ),
        (
            "unattributed_warn_fraction",
            "some",
            "tenants.prod.unattributed_warn_fraction: expected a number, got",
        ),
        (
            "start_date",
            "01/02/2026",
            "tenants.prod.start_date: expected an ISO date (YYYY-MM-DD), got string",
        ),
        ("start_date", "2026-02-30", "tenants.prod.start_date: not a valid date"),
        ("emitters", {"type": "csv"}, "tenants.prod.emitters: expected a list, got mapping"),
        ("tags", "team=a", "tenants.prod.tags: expected a mapping, got string 'team=a'"),
        (
            "allocator_params",
            {"fast": [1]},
            "tenants.prod.allocator_params.fast: expected a number, string or",
        ),
    ],
)
def test_wrong_types_name_the_expected_type(key: str, value: object, expected: str) -> None:
    assert parse_error(config(**{key: value})).startswith(expected)


def test_top_level_section_of_wrong_type() -> None:
    raw = config()
    raw["features"] = 4
    assert parse_error(raw) == "features: expected a mapping, got integer 4"


@pytest.mark.parametrize("key", ["ecosystem", "tenant_id", "start_date"])
def test_required_tenant_keys(key: str) -> None:
    raw = config()
    del raw["tenants"]["prod"][key]
    assert parse_error(raw) == f"tenants.prod.{key}: required key is missing"


def test_unknown_ecosystem() -> None:
    assert parse_error(config(ecosystem="aws")) == (
        "tenants.prod.ecosystem: must be one of confluent_cloud|self_managed_kafka|generic_metrics, got 'aws'"
    )


# --- bounds -----------------------------------------------------------------------------------------------

TENANT_BOUNDS = [
    ("recalculation_days", 1, 62),
    ("settle_days", 0, 30),
    ("retention_days", 1, 730),
    ("retention_max_days_per_run", 1, None),
    ("allocation_retry_limit", 1, 10),
    ("zero_gather_deletion_threshold", -1, None),
    ("gather_failure_threshold", 1, None),
    ("unallocated_warn_fraction", 0, 1),
    ("max_line_amount", 1, None),
    ("unattributed_warn_fraction", 0, 1),
]


@pytest.mark.parametrize(("key", "low", "high"), TENANT_BOUNDS)
def test_tenant_bounds_accept_their_edges(key: str, low: int, high: int | None) -> None:
    for value in (low, high) if high is not None else (low,):
        assert getattr(parse(config(**{key: value})).tenants["prod"], key) == value


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("recalculation_days", 0, "must be between 1 and 62, got 0"),
        ("recalculation_days", 63, "must be between 1 and 62, got 63"),
        ("settle_days", -1, "must be between 0 and 30, got -1"),
        ("settle_days", 31, "must be between 0 and 30, got 31"),
        ("retention_days", 0, "must be between 1 and 730, got 0"),
        ("retention_days", 731, "must be between 1 and 730, got 731"),
        ("retention_max_days_per_run", 0, "must be at least 1, got 0"),
        ("allocation_retry_limit", 0, "must be between 1 and 10, got 0"),
        ("allocation_retry_limit", 11, "must be between 1 and 10, got 11"),
        ("zero_gather_deletion_threshold", -2, "must be at least -1, got -2"),
        ("gather_failure_threshold", 0, "must be greater than 0, got 0"),
        ("unallocated_warn_fraction", -0.01, "must be between 0 and 1, got -0.01"),
        ("unallocated_warn_fraction", 1.01, "must be between 0 and 1, got 1.01"),
        ("max_line_amount", 0, "must be greater than 0, got 0"),
        ("max_line_amount", -5, "must be greater than 0, got -5"),
        ("unattributed_warn_fraction", -0.5, "must be between 0 and 1, got -0.5"),
        ("unattributed_warn_fraction", 2, "must be between 0 and 1, got 2"),
    ],
)
def test_tenant_bounds_reject_values_outside(key: str, value: object, rule: str) -> None:
    assert parse_error(config(**{key: value})) == f"tenants.prod.{key}: {rule}"


@pytest.mark.parametrize(
    ("section", "key", "value", "rule"),
    [
        ("features", "max_parallel_tenants", 0, "must be between 1 and 64, got 0"),
        ("features", "max_parallel_tenants", 65, "must be between 1 and 64, got 65"),
        ("orchestration", "billing_sensor_interval_seconds", 29, "must be at least 30, got 29"),
        ("orchestration", "emission_retry_interval_seconds", 29, "must be at least 30, got 29"),
        ("sources", "retry_budget_seconds", -1, "must be between 0 and 86400, got -1"),
        ("sources", "retry_budget_seconds", 86400.5, "must be between 0 and 86400, got 86400.5"),
        ("sources", "retry_budget_seconds", "soon", "expected a number, got string 'soon'"),
    ],
)
def test_top_level_bounds(section: str, key: str, value: object, rule: str) -> None:
    raw = config()
    raw[section] = {key: value}
    assert parse_error(raw) == f"{section}.{key}: {rule}"


def test_max_parallel_tenants_edges() -> None:
    for value in (1, 64):
        raw = config()
        raw["features"] = {"max_parallel_tenants": value}
        assert parse(raw).features.max_parallel_tenants == value


def test_retry_budget_edges_and_substitution() -> None:
    """0 (no retries) and a day are both allowed; a budget can come from the environment like any value."""
    for value, expected in ((0, 0.0), (86400, 86400.0), ("${BUDGET:-120}", 120.0)):
        raw = config()
        raw["sources"] = {"retry_budget_seconds": value}
        assert parse(raw).sources.retry_budget_seconds == expected


@pytest.mark.parametrize(
    ("cron", "rule"),
    [
        ("0 3 * *", "must be a cron expression of 5 fields (minute hour day month weekday)"),
        ("0 3 * * * *", "must be a cron expression of 5 fields (minute hour day month weekday)"),
        ("every day", "must be a cron expression of 5 fields (minute hour day month weekday)"),
        ("0 3 * * $", "cron weekday field '$' is not valid"),
        ("99 99 99 99 99", "cron minute field '99' is out of range 0-59"),
        ("0 24 * * *", "cron hour field '24' is out of range 0-23"),
        ("0 3 0 * *", "cron day field '0' is out of range 1-31"),
        ("0 3 * 1-13 *", "cron month field '1-13' is out of range 1-12"),
        ("*/0 3 * * *", "cron minute field '*/0' is not valid"),
        ("0 3 * * sun-funday", "cron weekday field 'sun-funday' is not valid"),
    ],
)
def test_bad_cron_is_refused_naming_the_field(cron: str, rule: str) -> None:
    raw = config()
    raw["orchestration"] = {"schedule_cron": cron}
    assert parse_error(raw) == f"orchestration.schedule_cron: {rule}, got {cron!r}"


@pytest.mark.parametrize("cron", ["30 4 * * 1-5", "*/15 0-6,22,23 1,15 jan-mar,DEC mon-fri", "0 0 31 12 7"])
def test_valid_crons_pass(cron: str) -> None:
    raw = config()
    raw["orchestration"] = {"schedule_cron": cron}
    assert parse(raw).orchestration.schedule_cron == cron


def test_asset_owners_are_e_mail_addresses_or_teams() -> None:
    raw = config()
    raw["orchestration"] = {"asset_owners": ["team:finops", "dana@example.com"]}
    assert parse(raw).orchestration.asset_owners == ("team:finops", "dana@example.com")
    assert parse(config()).orchestration.asset_owners == ()


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        (["finops"], "orchestration.asset_owners[0]: must be an e-mail address or team:<name>, got 'finops'"),
        (["team:ok", 7], "orchestration.asset_owners[1]: expected a string, got integer 7"),
        ("team:finops", "orchestration.asset_owners: expected a list, got"),
    ],
)
def test_bad_asset_owners_are_refused(owners: object, expected: str) -> None:
    raw = config()
    raw["orchestration"] = {"asset_owners": owners}
    assert parse_error(raw).startswith(expected)


def test_logging_level_and_format_are_checked() -> None:
    raw = config()
    raw["logging"] = {"level": "verbose"}
    assert (
        parse_error(raw) == "logging.level: must be one of CRITICAL|ERROR|WARNING|INFO|DEBUG, got 'verbose'"
    )
    raw["logging"] = {"per_module_levels": {"dagster": "loud"}}
    assert parse_error(raw).startswith("logging.per_module_levels.dagster: must be one of CRITICAL|")
    raw["logging"] = {"format": "%(message"}
    assert parse_error(raw).startswith("logging.format: not a valid logging format")


# --- allocator params and overrides -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "usage", "shared"),
    [
        ({}, "0.70", "0.30"),
        ({"kafka_cku_usage_ratio": 0.6, "kafka_cku_shared_ratio": 0.4}, "0.6", "0.4"),
        ({"kafka_cku_usage_ratio": 0.70001, "kafka_cku_shared_ratio": 0.30}, "0.70001", "0.3"),
        ({"kafka_cku_usage_ratio": "0.8", "kafka_cku_shared_ratio": "0.2"}, "0.8", "0.2"),
        ({"kafka_cku_usage_ratio": 0.7}, "0.7", "0.30"),
        ({"kafka_cku_shared_ratio": 0.3}, "0.70", "0.3"),
    ],
)
def test_cku_ratios_that_sum_to_one(params: dict[str, object], usage: str, shared: str) -> None:
    parsed = parse(config(allocator_params=params)).tenants["prod"].allocator_params
    assert parsed["kafka_cku_usage_ratio"] == Decimal(usage)
    assert parsed["kafka_cku_shared_ratio"] == Decimal(shared)
    assert isinstance(parsed["kafka_cku_usage_ratio"], Decimal)


@pytest.mark.parametrize(
    ("params", "total"),
    [
        ({"kafka_cku_usage_ratio": 0.60}, "0.90"),
        ({"kafka_cku_usage_ratio": 0.701, "kafka_cku_shared_ratio": 0.30}, "1.001"),
        ({"kafka_cku_usage_ratio": 0.8, "kafka_cku_shared_ratio": 0.3}, "1.1"),
        ({"kafka_cku_shared_ratio": 0.5}, "1.20"),
    ],
)
def test_cku_ratios_that_do_not_sum_to_one(params: dict[str, object], total: str) -> None:
    assert parse_error(config(allocator_params=params)) == (
        "tenants.prod.allocator_params: "
        f"kafka_cku_usage_ratio + kafka_cku_shared_ratio must be 1.0, got {total}"
    )


def test_ratio_keys_must_be_numbers_and_other_params_keep_their_type() -> None:
    assert parse_error(config(allocator_params={"storage_ratio": "high"})) == (
        "tenants.prod.allocator_params.storage_ratio: expected a number, got string 'high'"
    )
    assert parse_error(config(allocator_params={"storage_ratio": True})) == (
        "tenants.prod.allocator_params.storage_ratio: expected a number, got boolean True"
    )
    assert (
        parse_error(config(allocator_params={"kafka_cku_usage_ratio": 1.5, "kafka_cku_shared_ratio": -0.5}))
        == "tenants.prod.allocator_params.kafka_cku_usage_ratio: must be between 0 and 1, got 1.5"
    )
    params = parse(config(allocator_params={"mode": "strict", "enabled": True, "count": 2, "weight": 0.1}))
    got = params.tenants["prod"].allocator_params
    assert (got["mode"], got["enabled"], got["count"], got["weight"]) == ("strict", True, 2, Decimal("0.1"))
    assert type(got["count"]) is int and type(got["enabled"]) is bool


CALLABLES = "chargeback_assets_tests.engine.custom_callables"


def test_overrides_are_imported_and_checked_at_load() -> None:
    good = parse(
        config(
            allocator_overrides={"KAFKA_NUM_CKUS": f"{CALLABLES}:to_platform_team"},
            identity_resolution_overrides={"kafka": f"{CALLABLES}:resolver"},
        )
    ).tenants["prod"]
    assert good.allocator_overrides == {"KAFKA_NUM_CKUS": f"{CALLABLES}:to_platform_team"}
    assert good.identity_resolution_overrides == {"kafka": f"{CALLABLES}:resolver"}


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("acme.alloc.split", "must be 'package.module:callable'"),
        (
            "acme_missing.alloc:split",
            "cannot import module 'acme_missing.alloc' (No module named 'acme_missing')",
        ),
        (f"{CALLABLES}:nothing", f"module '{CALLABLES}' has no attribute 'nothing'"),
        (f"{CALLABLES}:two_args", "must accept exactly 1 positional argument(s)"),
        (f"{CALLABLES}:not_callable", "is not callable"),
    ],
)
def test_a_bad_allocator_override_fails_at_load_naming_its_key(path: str, rule: str) -> None:
    """Found on main: a missing module was retried for ~29 s at run time, and the message named no key."""
    assert parse_error(config(allocator_overrides={"KAFKA_NUM_CKUS": path})) == (
        f"tenants.prod.allocator_overrides.KAFKA_NUM_CKUS: {rule}, got {path!r}"
    )


def test_an_override_on_a_product_type_the_ecosystem_lacks_is_refused() -> None:
    """Found on main: an override on a misspelled product type was ignored silently."""
    message = parse_error(config(allocator_overrides={"KAFKA_NUM_CKUZ": f"{CALLABLES}:to_platform_team"}))
    assert message.startswith(
        "tenants.prod.allocator_overrides.KAFKA_NUM_CKUZ: confluent_cloud has no product type "
        "'KAFKA_NUM_CKUZ'; did you mean KAFKA_NUM_CKU? known: AUDIT_LOG_READ, "
    )


def test_identity_overrides_are_keyed_by_the_ecosystem_service_types() -> None:
    assert parse_error(config(identity_resolution_overrides={"topic": f"{CALLABLES}:resolver"})) == (
        "tenants.prod.identity_resolution_overrides: "
        "must be one of connector|default|flink|kafka|ksqldb|org_wide|schema_registry, got 'topic'"
    )


# --- tenants ----------------------------------------------------------------------------------------------


def test_duplicate_tenant_id_names_both_tenants() -> None:
    raw = {"tenants": {"prod": tenant(), "prod-copy": tenant()}}
    assert parse_error(raw) == (
        "tenants.prod-copy.tenant_id: duplicate tenant_id 't-prod', already used at tenants.prod.tenant_id"
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a|b", "it contains '|'"),
        ("a,b", "it contains ','"),
        ("a[1]", "it contains '['"),
        ("b]", "it contains ']'"),
        ("", "it is empty or whitespace"),
        ("   ", "it is empty or whitespace"),
    ],
)
def test_tenant_names_must_be_partition_keys(name: str, why: str) -> None:
    message = parse_error({"tenants": {name: tenant()}})
    assert message.startswith(f"tenants: tenant name {name!r} cannot be a partition key: {why}")


def test_tenant_names_must_be_strings() -> None:
    assert (
        parse_error({"tenants": {2026: tenant()}})
        == "tenants: keys must be strings (quote it), got integer 2026"
    )


def test_plugin_settings_errors_are_under_the_tenant() -> None:
    raw = config(
        plugin_settings={"ccloud_api": {"key": "k", "secret": "s"}, "billing_api": {"days_per_query": 0}}
    )
    assert (
        parse_error(raw)
        == "tenants.prod.plugin_settings.billing_api.days_per_query: must be between 1 and 31, got 0"
    )


def test_plugin_settings_are_parsed_by_the_tenant_ecosystem() -> None:
    raw = config(
        ecosystem="generic_metrics",
        plugin_settings={
            "cluster_id": "pg-1",
            "metrics": {"url": "http://127.0.0.1:9090"},
            "identity_source": {
                "source": "static",
                "static_identities": [{"identity_id": "a", "identity_type": "team"}],
            },
            "cost_types": [
                {
                    "name": "PG",
                    "product_category": "db",
                    "rate": "2.5",
                    "cost_quantity": {"type": "fixed", "count": 3},
                }
            ],
        },
        identity_resolution_overrides={"generic": f"{CALLABLES}:resolver"},
    )
    prod = parse(raw).tenants["prod"]
    assert prod.ecosystem == "generic_metrics"
    assert prod.plugin_settings.cost_types[0].rate == Decimal("2.5")  # type: ignore[union-attr]


# --- emitters ---------------------------------------------------------------------------------------------


def test_emitters_defaults_and_params() -> None:
    emitters = (
        parse(
            config(
                emitters=[
                    {"type": "csv", "params": {"output_dir": "out"}},
                    {
                        "type": "prometheus",
                        "name": "prom-monthly",
                        "aggregation": "monthly",
                        "lookback_days": 30,
                        "params": {
                            "output_dir": "om",
                            "pushgateway_url": "http://127.0.0.1:9091/",
                            "job": "cb",
                        },
                    },
                ]
            )
        )
        .tenants["prod"]
        .emitters
    )
    assert [(e.type, e.name, e.aggregation, e.lookback_days) for e in emitters] == [
        ("csv", "csv", "daily", None),
        ("prometheus", "prom-monthly", "monthly", 30),
    ]
    assert emitters[0].params == CsvParams(output_dir="out")
    assert emitters[1].params == PrometheusParams(
        output_dir="om", pushgateway_url="http://127.0.0.1:9091", job="cb"
    )


@pytest.mark.parametrize(
    ("emitter", "expected"),
    [
        ({"type": "xml"}, "tenants.prod.emitters[0].type: must be one of csv|prometheus|focus, got 'xml'"),
        ({}, "tenants.prod.emitters[0].type: required key is missing"),
        (
            {"type": "csv", "aggregation": "hourly", "params": {"output_dir": "o"}},
            "tenants.prod.emitters[0].aggregation: must be one of daily|monthly, got 'hourly'",
        ),
        (
            {"type": "csv", "lookback_days": 0, "params": {"output_dir": "o"}},
            "tenants.prod.emitters[0].lookback_days: must be at least 1, got 0",
        ),
        ({"type": "csv", "params": ["a"]}, "tenants.prod.emitters[0].params: expected a mapping, got list"),
        ("csv", "tenants.prod.emitters[0]: expected a mapping, got string 'csv'"),
        # Found on main: params were only checked when emitting, after billing and charges were written.
        ({"type": "csv"}, "tenants.prod.emitters[0].params: required key is missing"),
        (
            {"type": "csv", "params": {}},
            "tenants.prod.emitters[0].params.output_dir: required key is missing",
        ),
        (
            {"type": "csv", "params": {"output_dir": "o", "dir": "x"}},
            "tenants.prod.emitters[0].params: unknown key 'dir'; allowed keys: filename_template, output_dir",
        ),
        (
            {"type": "csv", "params": {"output_dir": "o", "filename_template": "../{date}.csv"}},
            "tenants.prod.emitters[0].params.filename_template: must be a relative path inside output_dir, "
            "got '../{date}.csv'",
        ),
        (
            {"type": "csv", "params": {"output_dir": "o", "filename_template": "/tmp/{date}.csv"}},
            "tenants.prod.emitters[0].params.filename_template: must be a relative path inside output_dir",
        ),
        (
            {"type": "csv", "params": {"output_dir": "o", "filename_template": "{date.__class__}.csv"}},
            "tenants.prod.emitters[0].params.filename_template: unknown field(s) ['date.__class__']",
        ),
        (
            {"type": "csv", "params": {"output_dir": 7}},
            "tenants.prod.emitters[0].params.output_dir: expected a string, got integer 7",
        ),
        (
            {"type": "prometheus", "params": {"output_dir": "o", "pushgateway_url": "pushgateway:9091"}},
            "tenants.prod.emitters[0].params.pushgateway_url: must be an http:// or https:// URL, "
            "got 'pushgateway:9091'",
        ),
        (
            {"type": "prometheus", "params": {"port": 8000}},
            "tenants.prod.emitters[0].params.output_dir: required key is missing\n"
            "tenants.prod.emitters[0].params: unknown key 'port'; allowed keys: job, output_dir, "
            "pushgateway_url",
        ),
    ],
)
def test_bad_emitters(emitter: object, expected: str) -> None:
    assert parse_error(config(emitters=[emitter])).startswith(expected)


def test_emitter_names_are_unique_per_tenant() -> None:
    csv = {"type": "csv", "params": {"output_dir": "a"}}
    prometheus = {"type": "prometheus", "name": "csv", "params": {"output_dir": "b"}}
    assert parse_error(config(emitters=[csv, prometheus])) == (
        "tenants.prod.emitters[1].name: duplicate emitter name 'csv', "
        "already used at tenants.prod.emitters[0].name"
    )


# --- tags -------------------------------------------------------------------------------------------------


def test_tags_are_read() -> None:
    tags = (
        parse(config(tags={"identities": {"sa-1": {"team": "a", "cost.center_2-x": "b"}}}))
        .tenants["prod"]
        .tags
    )
    assert tags.identities == {"sa-1": {"team": "a", "cost.center_2-x": "b"}}
    assert tags.resources == {}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("Team", "a", "tenants.prod.tags.identities.sa-1: tag keys must match ^[a-z][a-z0-9_.-]{0,62}$"),
        ("1team", "a", "tenants.prod.tags.identities.sa-1: tag keys must match"),
        ("t" * 64, "a", "tenants.prod.tags.identities.sa-1: tag keys must match"),
        ("team", "", "tenants.prod.tags.identities.sa-1.team: must not be empty"),
        (
            "team",
            "x" * 257,
            "tenants.prod.tags.identities.sa-1.team: must be at most 256 characters, got 257",
        ),
        (
            "team",
            "a\nb",
            "tenants.prod.tags.identities.sa-1.team: tag values may not contain control characters",
        ),
        ("team", 12, "tenants.prod.tags.identities.sa-1.team: expected a string, got integer 12"),
    ],
)
def test_bad_tags(key: str, value: object, expected: str) -> None:
    assert parse_error(config(tags={"identities": {"sa-1": {key: value}}})).startswith(expected)


def test_longest_tag_key_and_value_are_accepted() -> None:
    key, value = "t" * 63, "v" * 256
    tags = parse(config(tags={"resources": {"lkc-1": {key: value}}})).tenants["prod"].tags
    assert tags.resources["lkc-1"][key] == value


# --- secrets ----------------------------------------------------------------------------------------------


def test_secrets_never_show_in_repr() -> None:
    loaded = parse(config())
    settings = loaded.tenants["prod"].plugin_settings
    assert isinstance(settings, ConfluentCloudSettings)
    assert settings.api_secret.reveal() == SECRET_VALUE
    assert SECRET_VALUE not in repr(loaded)
    assert SECRET_VALUE not in str(loaded)


@pytest.mark.parametrize(
    "plugin_settings",
    [
        {"ccloud_api": {"key": "k", "secret": 987654321}},
        {"ccloud_api": {"key": "k", "secret": ["s3cr3t-do-not-show"]}},
        {"ccloud_api": {"key": "k", "secret": "s", "password": SECRET_VALUE}},
        {
            "ccloud_api": {"key": "k", "secret": "s"},
            "flink": [{"region_id": "r", "key": "k", "secret": 987654321}],
        },
        {
            "ccloud_api": {"key": "k", "secret": "s"},
            "metrics": {"url": "http://127.0.0.1:9", "auth_type": "none", "password": SECRET_VALUE},
        },
    ],
)
def test_a_secret_that_fails_validation_is_not_echoed(plugin_settings: dict[str, Any]) -> None:
    message = parse_error(config(plugin_settings=copy.deepcopy(plugin_settings)))
    assert message.startswith("tenants.prod.plugin_settings.")
    assert SECRET_VALUE not in message
    assert "987654321" not in message


# --- found on main ----------------------------------------------------------------------------------------


def test_the_example_loads_and_builds_every_emitter_it_names(tmp_path: Path) -> None:
    """Found on main: its prometheus emitter (`params: {port: 8000}`) loaded, then failed every run."""
    loaded = load_config(EXAMPLE, {"CCLOUD_API_KEY": "ABC123"})
    built = [(e.name, type(e.params.build()).__name__) for t in loaded.tenants.values() for e in t.emitters]
    assert built == [
        ("csv", "CsvEmitter"),
        ("prometheus", "PrometheusEmitter"),
        ("focus", "FocusEmitter"),
        ("csv", "CsvEmitter"),
    ]


@pytest.mark.parametrize("tenant_id", ["../../evil", "a/b", ".hidden", "a b", "x" * 129, "a\\b"])
def test_ids_that_name_files_are_constrained_at_load(tenant_id: str) -> None:
    """Found on main: `../../evil` was refused only when emitting; `a/b` put the CSV in a subdirectory."""
    assert parse_error(config(tenant_id=tenant_id)).startswith(
        "tenants.prod.tenant_id: must be 1-128 letters, digits, '.', '_' or '-', starting with a letter "
        "or digit"
    )


@pytest.mark.parametrize("name", ["a\nb", "a\x00b", "tab\there"])
def test_tenant_names_with_control_characters_are_refused_on_one_line(name: str) -> None:
    message = parse_error({"tenants": {name: tenant()}})
    assert (
        message == f"tenants: tenant name {name!r} cannot be a partition key: "
        "it contains a control character (a newline, NUL, ...)"
    )
    assert "\n" not in message


def test_a_storage_path_that_is_a_directory_is_refused_at_load(tmp_path: Path) -> None:
    """Found on main: sqlite3.OperationalError after 3 retries, naming no key."""
    raw = config()
    raw["storage"] = {"path": "${DATA_DIR}"}
    assert parse_error(raw, {"DATA_DIR": str(tmp_path)}) == (
        "storage.path: is a directory; give the database file, e.g. data/chargeback.db"
    )


def test_a_postgresql_url_takes_its_password_from_the_environment_and_never_shows_it() -> None:
    raw = config()
    raw["storage"] = {"url": "postgresql://chargeback:${PGPASSWORD}@db.internal:5433/chargeback"}
    storage = parse(raw, {"PGPASSWORD": SECRET_VALUE}).storage
    assert storage.path is None
    assert storage.url is not None
    assert storage.url.reveal() == f"postgresql://chargeback:{SECRET_VALUE}@db.internal:5433/chargeback"
    assert str(storage.url) == "postgresql://chargeback@db.internal:5433/chargeback"
    assert SECRET_VALUE not in repr(storage) and SECRET_VALUE not in str(storage)
    assert scrub(f"could not reach {storage.url.reveal()}") == "could not reach ***"
    assert scrub(f"password={SECRET_VALUE}") == "password=***"


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (
            {"url": f"mysql://u:{SECRET_VALUE}@h/db"},
            "storage.url: must be a postgresql:// URL, got a mysql:// URL",
        ),
        (
            {"url": f"postgresql://u:{SECRET_VALUE}@h:5432"},
            "storage.url: must name the database (postgresql://user:password@host:port/DATABASE)",
        ),
        (
            {"url": f"postgresql://u:{SECRET_VALUE}@h/db", "path": "data/chargeback.db"},
            "storage.url: give storage.path (SQLite) or storage.url (PostgreSQL), not both",
        ),
    ],
)
def test_a_storage_url_that_is_not_a_postgresql_database_is_refused_naming_the_key(
    storage: dict[str, str], expected: str
) -> None:
    raw = config()
    raw["storage"] = storage
    message = parse_error(raw)
    assert message == expected
    assert SECRET_VALUE not in message


def test_an_unquoted_impossible_date_names_its_key(tmp_path: Path) -> None:
    """Found on main: `start_date: 2026-13-01` failed in the YAML loader with a bare ValueError."""
    file = tmp_path / "c.yaml"
    file.write_text(
        "tenants:\n  prod:\n    ecosystem: confluent_cloud\n    tenant_id: t1\n    start_date: 2026-13-01\n"
        "    plugin_settings: {ccloud_api: {key: k, secret: s}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == (
        f"{file}: tenants.prod.start_date: not a valid date (month must be in 1..12), got '2026-13-01'"
    )


@pytest.mark.parametrize("key", ["retention_days", "unallocated_warn_fraction", "start_date", "tenant_id"])
def test_a_value_from_the_environment_is_never_shown_in_an_error(key: str) -> None:
    """Found on main: a secret put in a numeric key by mistake was echoed in the type error."""
    message = parse_error(config(**{key: "${LEAKED}"}), {"LEAKED": f"{SECRET_VALUE}!"})
    assert message.startswith(f"tenants.prod.{key}: ")
    assert SECRET_VALUE not in message


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    """Found on main: a 336-byte document kept loading busy for over a minute and 2 GB."""
    lines = ['a0: &a0 ["${X:-lol}", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    file = tmp_path / "bomb.yaml"
    file.write_text("\n".join(lines) + "\ntenants: *a8\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == (f"{file}: the document expands to more than 100000 values (YAML aliases?)")


def test_a_node_that_holds_itself_is_refused_like_an_alias_bomb(tmp_path: Path) -> None:
    file = tmp_path / "loop.yaml"
    file.write_text("loop: &loop [*loop]\ntenants: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == f"{file}: the document expands to more than 100000 values (YAML aliases?)"


def test_aliases_that_share_a_block_still_work(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "defaults: &defaults {ecosystem: confluent_cloud, start_date: 2026-01-01, "
        "plugin_settings: {ccloud_api: {key: k, secret: s}}}\n"
    )
    raw = yaml.safe_load(file.read_text())
    raw = {
        "tenants": {"a": {**raw["defaults"], "tenant_id": "a"}, "b": {**raw["defaults"], "tenant_id": "b"}}
    }
    assert sorted(parse(raw).tenants) == ["a", "b"]


def test_tag_keys_that_would_be_one_prometheus_label_are_refused_at_load() -> None:
    """Found on main: `cost.center` and `cost_center` loaded, then failed every Prometheus emission."""
    tags = {"identities": {"sa-1": {"cost.center": "a"}}, "resources": {"lkc-1": {"cost_center": "b"}}}
    assert parse_error(config(tags=tags)) == (
        "tenants.prod.tags: tag keys ['cost.center', 'cost_center'] would be one Prometheus label; "
        "use one spelling"
    )


def test_every_problem_is_reported_not_only_the_first() -> None:
    raw = config(retention_days=0, settle_days="x", emitters=[{"type": "xml"}])
    raw["features"] = {"max_parallel_tenants": 99}
    assert sorted(parse_error(raw).splitlines()) == [
        "features.max_parallel_tenants: must be between 1 and 64, got 99",
        "tenants.prod.emitters[0].type: must be one of csv|prometheus|focus, got 'xml'",
        "tenants.prod.retention_days: must be between 1 and 730, got 0",
        "tenants.prod.settle_days: expected an integer, got string 'x'",
    ]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"", "tenants: no tenants configured"),
        (b"tenants:\n  prod: {}\n  prod: {}\n", "invalid YAML at line 3, column 3: duplicate key 'prod'"),
        (b"tenants: \xff\xfe\n", "not UTF-8 text (byte 9 is 0xff)"),
        (b"- a\n- b\n", "expected a mapping, got list"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, text: bytes, rule: str) -> None:
    file = tmp_path / "c.yaml"
    file.write_bytes(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == f"{file}: {rule}"


# --- layering and the README ------------------------------------------------------------------------------


def test_no_ecosystem_or_emitter_module_imports_the_app_config() -> None:
    """Settings flow down: config imports the ecosystems' and emitters' models, never the other way."""
    package = Path(__file__).resolve().parents[1] / "chargeback_assets"
    upward = []
    for module in [*(package / "ecosystems").rglob("*.py"), *(package / "emitters").rglob("*.py")]:
        for node in ast.walk(ast.parse(module.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            upward += [
                f"{module.relative_to(package)}: {n}" for n in names if n == "chargeback_assets.config"
            ]
    assert upward == []


def test_the_readme_config_reference_names_every_tenant_key() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    reference = readme[readme.index("## Configuration") : readme.index("## How a billing line is allocated")]
    keys = [f.name for f in dataclasses.fields(TENANT_MODELS["confluent_cloud"]) if f.init]
    keys += [
        f.name
        for section in (StorageConfig, FeaturesConfig, SourcesConfig, OrchestrationConfig)
        for f in dataclasses.fields(section)
    ]
    assert [key for key in keys if f"{key}`" not in reference] == []  # `key` or `section.key`
