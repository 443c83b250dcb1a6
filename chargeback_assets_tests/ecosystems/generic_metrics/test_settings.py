from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chargeback_assets.ecosystems.generic_metrics.settings import (
    CostQuantity,
    GenericCostType,
    GenericMetricsSettings,
)
from chargeback_assets.ecosystems.identity_source_settings import DiscoveredIdentitySource, StaticIdentity
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.validation import ConfigError, validate

PATH = "tenants.pg.plugin_settings"
FIXED = {
    "name": "PG_INSTANCE",
    "product_category": "postgres",
    "rate": "2.50",
    "cost_quantity": {"type": "fixed", "count": 3},
}
DISCOVERY = {"discovery_query": "group by (principal) (pg_stat_activity_count)"}


def settings(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "cluster_id": "pg-main",
        "metrics": {"url": "http://127.0.0.1:9090"},
        "identity_source": dict(DISCOVERY),
        "cost_types": [dict(FIXED)],
    }
    raw.update(extra)
    return raw


def cost_type(**changes: Any) -> dict[str, Any]:
    return {**FIXED, **changes}


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(GenericMetricsSettings, raw, at=PATH)
    return str(caught.value)


def test_minimal_settings() -> None:
    assert validate(GenericMetricsSettings, settings(), at=PATH) == GenericMetricsSettings(
        cluster_id="pg-main",
        metrics=PrometheusSettings(url="http://127.0.0.1:9090"),
        cost_types=(
            GenericCostType("PG_INSTANCE", "postgres", Decimal("2.50"), CostQuantity("fixed", count=3)),
        ),
        identity_source=DiscoveredIdentitySource(discovery_query=DISCOVERY["discovery_query"]),
    )


def test_query_based_cost_types_and_usage_ratio() -> None:
    parsed = validate(
        GenericMetricsSettings,
        settings(
            display_name="Main Postgres",
            identity_source={
                "source": "static",
                "static_identities": [{"identity_id": "t", "identity_type": "team"}],
            },
            cost_types=[
                cost_type(
                    name="PG_STORAGE",
                    rate=0.0001,
                    cost_quantity={"type": "storage_gib", "query": "sum(pg_db_bytes)"},
                ),
                cost_type(
                    name="PG_NETWORK",
                    rate="0.01",
                    cost_quantity={"type": "network_gib", "query": "sum(increase(pg_bytes_total[1h]))"},
                    allocation_strategy="usage_ratio",
                    allocation_query="sum by (usename) (increase(pg_bytes_total[1h]))",
                    allocation_label="usename",
                ),
            ],
            metrics_step_seconds=300,
        ),
    )
    assert parsed.display_name == "Main Postgres"
    assert parsed.identity_source.static_identities == (StaticIdentity("t", "team"),)
    assert parsed.identity_source.discovery_query is None
    storage, network = parsed.cost_types
    assert (storage.rate, storage.cost_quantity) == (
        Decimal("0.0001"),
        CostQuantity("storage_gib", query="sum(pg_db_bytes)"),
    )
    assert (network.allocation_strategy, network.allocation_label) == ("usage_ratio", "usename")
    assert parsed.metrics_step_seconds == 300


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (settings(cost_types=[]), f"{PATH}.cost_types: must not be empty (give at least one)"),
        (settings(cost_types=None), f"{PATH}.cost_types: required key is missing"),
        (
            settings(identity_source={}),
            f"{PATH}.identity_source.discovery_query: required when source is prometheus",
        ),
        (
            settings(
                identity_source={
                    "source": "both",
                    "static_identities": [{"identity_id": "a", "identity_type": "t"}],
                }
            ),
            f"{PATH}.identity_source.discovery_query: required when source is both",
        ),
        (
            settings(cost_types=[cost_type(allocation_strategy="usage_ratio")]),
            f"{PATH}.cost_types[0].allocation_query: required when allocation_strategy is usage_ratio",
        ),
        (
            settings(cost_types=[cost_type(allocation_strategy="usage_ratio", allocation_query="q")]),
            f"{PATH}.cost_types[0].allocation_label: required when allocation_strategy is usage_ratio",
        ),
        (
            settings(cost_types=[cost_type(allocation_label="user")]),
            f"{PATH}.cost_types[0].allocation_label: not allowed when allocation_strategy is even_split",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "fixed", "count": 0})]),
            f"{PATH}.cost_types[0].cost_quantity.count: must be greater than 0, got 0",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "fixed"})]),
            f"{PATH}.cost_types[0].cost_quantity.count: required when type is fixed",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "fixed", "count": 1, "query": "q"})]),
            f"{PATH}.cost_types[0].cost_quantity.query: not allowed when type is fixed",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "storage_gib"})]),
            f"{PATH}.cost_types[0].cost_quantity.query: required when type is storage_gib",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "network_gib", "query": "q", "count": 2})]),
            f"{PATH}.cost_types[0].cost_quantity.count: not allowed when type is network_gib",
        ),
        (
            settings(cost_types=[cost_type(cost_quantity={"type": "cpu"})]),
            f"{PATH}.cost_types[0].cost_quantity.type: must be one of fixed|storage_gib|network_gib",
        ),
        (
            settings(cost_types=[cost_type(rate="-1")]),
            f"{PATH}.cost_types[0].rate: must be at least 0, got '-1'",
        ),
        (settings(cost_types=[cost_type(rate=None)]), f"{PATH}.cost_types[0].rate: required key is missing"),
        (
            settings(cost_types=[cost_type(), cost_type()]),
            f"{PATH}.cost_types[1].name: duplicate cost type name 'PG_INSTANCE', "
            f"already used at {PATH}.cost_types[0].name",
        ),
        (settings(cluster_id=None), f"{PATH}.cluster_id: required key is missing"),
        (settings(metrics=None), f"{PATH}.metrics: required key is missing"),
        (
            settings(metrics={"url": "http://p", "auth_type": "none", "username": "u"}),
            f"{PATH}.metrics.username: not allowed when auth_type is none",
        ),
        (
            settings(metrics_step_seconds=5000),
            f"{PATH}.metrics_step_seconds: must divide a day (86400 s) evenly",
        ),
        (settings(region="x"), f"{PATH}: unknown key 'region'; allowed keys: cluster_id, cost_types,"),
    ],
)
def test_rejections(raw: dict[str, Any], expected: str) -> None:
    assert error(raw).startswith(expected)
