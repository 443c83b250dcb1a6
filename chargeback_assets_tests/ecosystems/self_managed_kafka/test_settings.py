from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings, StaticIdentity
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.ecosystems.self_managed_kafka.settings import (
    CostRates,
    ResourceSourceSettings,
    SelfManagedKafkaSettings,
)
from chargeback_assets.validation import ConfigError, validate

PATH = "tenants.onprem.plugin_settings"
METRICS_PASSWORD = "metrics-pw-do-not-show"
RATES = {
    "compute_hourly_rate": "0.10",
    "storage_per_gib_hourly": "0.0001",
    "network_ingress_per_gib": 0.01,
    "network_egress_per_gib": 0.02,
}


def settings(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "cluster_id": "kafka-cluster-001",
        "broker_count": 3,
        "cost_model": dict(RATES),
        "metrics": {"url": "http://127.0.0.1:9090"},
    }
    raw.update(extra)
    return raw


def parse(raw: dict[str, Any]) -> SelfManagedKafkaSettings:
    return validate(SelfManagedKafkaSettings, raw, at=PATH)


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    message = str(caught.value)
    assert METRICS_PASSWORD not in message
    return message


def test_minimal_settings() -> None:
    parsed = parse(settings())
    assert (parsed.cluster_id, parsed.broker_count, parsed.region) == ("kafka-cluster-001", 3, None)
    assert parsed.metrics == PrometheusSettings(url="http://127.0.0.1:9090")
    assert parsed.identity_source == IdentitySourceSettings()
    assert parsed.resource_source == ResourceSourceSettings()
    assert (parsed.metrics_step_seconds, parsed.discovery_window_hours) == (3600, 1)


def test_rates_are_exact_decimals_from_strings_or_numbers() -> None:
    rates = parse(settings()).rates
    assert rates == CostRates(Decimal("0.10"), Decimal("0.0001"), Decimal("0.01"), Decimal("0.02"))
    assert str(rates.network_ingress_per_gib) == "0.01"


def test_region_override_applies_field_by_field() -> None:
    cost_model = {**RATES, "region_overrides": {"us-west-2": {"compute_hourly_rate": "0.08"}}}
    in_region = parse(settings(region="us-west-2", cost_model=cost_model))
    assert in_region.rates == CostRates(Decimal("0.08"), Decimal("0.0001"), Decimal("0.01"), Decimal("0.02"))
    elsewhere = parse(settings(region="eu-west-1", cost_model=cost_model))
    assert elsewhere.rates.compute_hourly_rate == Decimal("0.10")


def test_identity_source_with_teams_and_static_identities() -> None:
    parsed = parse(
        settings(
            identity_source={
                "source": "both",
                "principal_to_team": {"User:alice": "team-data"},
                "default_team": "NONE",
                "static_identities": [
                    {"identity_id": "team-no-name", "identity_type": "team"},
                    {"identity_id": "svc", "identity_type": "principal", "display_name": "Svc", "team": "t"},
                ],
            }
        )
    ).identity_source
    assert parsed.principal_to_team == {"User:alice": "team-data"}
    assert parsed.default_team == "NONE"
    assert parsed.static_identities == (
        StaticIdentity("team-no-name", "team"),
        StaticIdentity("svc", "principal", "Svc", "t"),
    )
    assert (parsed.uses_prometheus, parsed.uses_static) == (True, True)


def test_admin_api_is_refused_at_load_saying_what_to_use_instead() -> None:
    assert error(settings(resource_source={"source": "admin_api"})) == (
        f"{PATH}.resource_source.source: admin_api is not available in this build (it has no Kafka "
        "admin client); use source: prometheus, which finds brokers and topics from the metrics' labels, "
        "got 'admin_api'"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (settings(broker_count=0), f"{PATH}.broker_count: must be at least 1, got 0"),
        (settings(cluster_id=None), f"{PATH}.cluster_id: required key is missing"),
        (settings(metrics=None), f"{PATH}.metrics: required key is missing"),
        (settings(cost_model=None), f"{PATH}.cost_model: required key is missing"),
        (
            settings(cost_model={**RATES, "compute_hourly_rate": "-0.1"}),
            f"{PATH}.cost_model.compute_hourly_rate: must be at least 0, got '-0.1'",
        ),
        (
            settings(cost_model={**RATES, "compute_hourly_rate": "ten"}),
            f"{PATH}.cost_model.compute_hourly_rate: expected a number, got string 'ten'",
        ),
        (
            settings(cost_model={k: v for k, v in RATES.items() if k != "network_egress_per_gib"}),
            f"{PATH}.cost_model.network_egress_per_gib: required key is missing",
        ),
        (
            settings(cost_model={**RATES, "region_overrides": {"us": {"compute_rate": 1}}}),
            f"{PATH}.cost_model.region_overrides.us: unknown key 'compute_rate'; "
            "allowed keys: compute_hourly_rate,",
        ),
        (
            settings(identity_source={"source": "ldap"}),
            f"{PATH}.identity_source.source: must be one of prometheus|",
        ),
        (
            settings(identity_source={"source": "static"}),
            f"{PATH}.identity_source.static_identities: at least one is required when source is static",
        ),
        (
            settings(identity_source={"discovery_query": "up"}),
            f"{PATH}.identity_source: unknown key 'discovery_query'",
        ),
        (
            settings(
                identity_source={
                    "source": "static",
                    "static_identities": [
                        {"identity_id": "a", "identity_type": "team"},
                        {"identity_id": "a", "identity_type": "user"},
                    ],
                }
            ),
            f"{PATH}.identity_source.static_identities[1].identity_id: duplicate identity_id 'a'",
        ),
        (
            settings(identity_source={"static_identities": [{"identity_id": "a"}]}),
            f"{PATH}.identity_source.static_identities[0].identity_type: required key is missing",
        ),
        (
            settings(metrics_step_seconds=7000),
            f"{PATH}.metrics_step_seconds: must divide a day (86400 s) evenly",
        ),
        (settings(discovery_window_hours=0), f"{PATH}.discovery_window_hours: must be greater than 0, got 0"),
        (
            settings(metrics={"url": "http://p", "auth_type": "bearer"}),
            f"{PATH}.metrics.bearer_token: required when auth_type is bearer",
        ),
    ],
)
def test_rejections(raw: dict[str, Any], expected: str) -> None:
    assert error(raw).startswith(expected)
