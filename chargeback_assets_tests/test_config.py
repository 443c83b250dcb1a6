from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargeback_assets.config import (
    AppConfig,
    EmitterConfig,
    TenantConfig,
    load_config,
    parse_config,
)
from chargeback_assets.ecosystems.confluent_cloud.settings import ConfluentCloudSettings
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings
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
    assert [(e.type, e.name) for e in acme.emitters] == [("csv", "csv"), ("prometheus", "prometheus")]
    assert acme.emitters[1].params == {"port": 8000}
    assert acme.tags.identities["sa-00001"] == {"team": "payments", "cost_center": "4711"}
    assert acme.tags.resources["lkc-00001"] == {"env": "production"}
    onprem = loaded.tenants["onprem-kafka"]
    assert isinstance(onprem.plugin_settings, SelfManagedKafkaSettings)
    assert onprem.plugin_settings.rates.compute_hourly_rate == Decimal("0.08")
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
        "tenants.acme-prod.plugin_settings.ccloud_api.key: "
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
    prod = loaded.tenants["prod"]
    assert prod == TenantConfig(
        name="prod",
        ecosystem="confluent_cloud",
        tenant_id="t-prod",
        start_date=date(2026, 1, 1),
        plugin_settings=ConfluentCloudSettings(api_key="KEY", api_secret=Secret(SECRET_VALUE)),
    )
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
    assert str(caught.value).startswith(f"{missing}: config file not found")


def test_default_path_is_chargeback_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(environ={})
    assert caught.value.path == "chargeback.yaml"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "tenants:\n", "tenants: {}\n"])
def test_no_tenants_is_an_error(tmp_path: Path, text: str) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, {})
    assert str(caught.value) == "tenants: no tenants configured"


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
    assert parse(config(tenant_id="${MISSING:-a}b}")).tenants["prod"].tenant_id == "ab}"


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


def test_unknown_emitter_key_lists_allowed_keys() -> None:
    raw = config(emitters=[{"type": "csv", "lookback": 3}])
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
    ("allocation_retry_limit", 1, 10),
    ("zero_gather_deletion_threshold", -1, None),
    ("gather_failure_threshold", 1, None),
    ("unallocated_warn_fraction", 0, 1),
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
        ("allocation_retry_limit", 0, "must be between 1 and 10, got 0"),
        ("allocation_retry_limit", 11, "must be between 1 and 10, got 11"),
        ("zero_gather_deletion_threshold", -2, "must be at least -1, got -2"),
        ("gather_failure_threshold", 0, "must be greater than 0, got 0"),
        ("unallocated_warn_fraction", -0.01, "must be between 0 and 1, got -0.01"),
        ("unallocated_warn_fraction", 1.01, "must be between 0 and 1, got 1.01"),
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


@pytest.mark.parametrize("cron", ["0 3 * *", "0 3 * * * *", "every day", "0 3 * * $"])
def test_bad_cron_is_refused(cron: str) -> None:
    raw = config()
    raw["orchestration"] = {"schedule_cron": cron}
    assert parse_error(raw).startswith("orchestration.schedule_cron: must be a cron expression of 5 fields")


def test_asset_owners_are_e_mail_addresses_or_teams() -> None:
    raw = config()
    raw["orchestration"] = {"asset_owners": ["team:finops", "dana@example.com"]}
    assert parse(raw).orchestration.asset_owners == ("team:finops", "dana@example.com")
    assert parse(config()).orchestration.asset_owners == ()


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        (["finops"], "orchestration.asset_owners[0]: must be an e-mail address or team:<name>, got 'finops'"),
        (["team:ok", 7], "orchestration.asset_owners[1]: must be an e-mail address or team:<name>, got 7"),
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
    assert parse_error(
        config(allocator_params={"kafka_cku_usage_ratio": 1.5, "kafka_cku_shared_ratio": -0.5})
    ) == ("tenants.prod.allocator_params.kafka_cku_usage_ratio: must be between 0 and 1, got 1.5")
    params = parse(config(allocator_params={"mode": "strict", "enabled": True, "count": 2, "weight": 0.1}))
    got = params.tenants["prod"].allocator_params
    assert (got["mode"], got["enabled"], got["count"], got["weight"]) == ("strict", True, 2, Decimal("0.1"))
    assert type(got["count"]) is int and type(got["enabled"]) is bool


def test_override_paths_need_module_colon_callable() -> None:
    good = parse(
        config(
            allocator_overrides={"KAFKA_NUM_CKU": "acme.alloc:split"},
            identity_resolution_overrides={"kafka": "acme.identity.resolvers:by_owner"},
        )
    ).tenants["prod"]
    assert good.allocator_overrides == {"KAFKA_NUM_CKU": "acme.alloc:split"}
    assert good.identity_resolution_overrides == {"kafka": "acme.identity.resolvers:by_owner"}
    assert parse_error(config(allocator_overrides={"KAFKA_NUM_CKU": "acme.alloc.split"})) == (
        "tenants.prod.allocator_overrides.KAFKA_NUM_CKU: must be 'package.module:callable' (with a colon), "
        "got 'acme.alloc.split'"
    )


def test_identity_overrides_are_keyed_by_the_ecosystem_service_types() -> None:
    assert parse_error(config(identity_resolution_overrides={"topic": "a:b"})) == (
        "tenants.prod.identity_resolution_overrides.topic: unknown service type; "
        "allowed: connector, default, flink, kafka, ksqldb, org_wide, schema_registry"
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
        == "tenants: keys must be strings, got integer 2026 (quote it)"
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
        identity_resolution_overrides={"generic": "x.y:z"},
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
                    {"type": "csv", "params": {"output_dir": "out", "nested": {"a": [1, 2]}}},
                    {"type": "csv", "name": "csv-monthly", "aggregation": "monthly", "lookback_days": 30},
                ]
            )
        )
        .tenants["prod"]
        .emitters
    )
    assert emitters == (
        EmitterConfig(type="csv", name="csv", params={"output_dir": "out", "nested": {"a": [1, 2]}}),
        EmitterConfig(type="csv", name="csv-monthly", aggregation="monthly", lookback_days=30),
    )


@pytest.mark.parametrize(
    ("emitter", "expected"),
    [
        ({"type": "xml"}, "tenants.prod.emitters[0].type: must be one of csv|prometheus, got 'xml'"),
        ({}, "tenants.prod.emitters[0].type: required key is missing"),
        (
            {"type": "csv", "aggregation": "hourly"},
            "tenants.prod.emitters[0].aggregation: must be one of daily|monthly",
        ),
        (
            {"type": "csv", "lookback_days": 0},
            "tenants.prod.emitters[0].lookback_days: must be at least 1, got 0",
        ),
        ({"type": "csv", "params": ["a"]}, "tenants.prod.emitters[0].params: expected a mapping, got list"),
        ("csv", "tenants.prod.emitters[0]: expected a mapping, got string 'csv'"),
    ],
)
def test_bad_emitters(emitter: object, expected: str) -> None:
    assert parse_error(config(emitters=[emitter])).startswith(expected)


def test_emitter_names_are_unique_per_tenant() -> None:
    assert parse_error(config(emitters=[{"type": "csv"}, {"type": "prometheus", "name": "csv"}])) == (
        "tenants.prod.emitters[1].name: duplicate emitter name 'csv', "
        "already used at tenants.prod.emitters[0].name"
    )


def test_secret_named_emitter_params_become_secrets() -> None:
    params = (
        parse(
            config(
                emitters=[
                    {"type": "prometheus", "params": {"port": 9100, "push": {"basic_password": SECRET_VALUE}}}
                ]
            )
        )
        .tenants["prod"]
        .emitters[0]
        .params
    )
    assert params["push"]["basic_password"] == Secret(SECRET_VALUE)
    assert SECRET_VALUE not in repr(params)


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
        ("Team", "a", "tenants.prod.tags.identities.sa-1.Team: tag keys must match ^[a-z][a-z0-9_.-]{0,62}$"),
        ("1team", "a", "tenants.prod.tags.identities.sa-1.1team: tag keys must match"),
        ("t" * 64, "a", f"tenants.prod.tags.identities.sa-1.{'t' * 64}: tag keys must match"),
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
