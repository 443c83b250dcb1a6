"""Self-managed Kafka as a registered ecosystem: settings in, a runtime whose parts work together out."""

from __future__ import annotations

from datetime import date

import pytest

from chargeback_assets.ecosystems import ECOSYSTEMS
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.ecosystems.self_managed_kafka import ECOSYSTEM
from chargeback_assets.ecosystems.self_managed_kafka.handlers import KafkaHandler
from chargeback_assets.validation import ConfigError, validate
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import STEP_SECONDS, PrometheusProxy

RAW = {
    "cluster_id": "kafka-cluster-001",
    "broker_count": 3,
    "cost_model": {
        "compute_hourly_rate": "0.10",
        "storage_per_gib_hourly": "0.0001",
        "network_ingress_per_gib": "0.01",
        "network_egress_per_gib": "0.02",
    },
    "metrics_step_seconds": STEP_SECONDS,
}


def test_the_registry_finds_it() -> None:
    assert ECOSYSTEMS["self_managed_kafka"] is ECOSYSTEM
    assert ECOSYSTEM.name == "self_managed_kafka"


def test_parse_names_the_key_path() -> None:
    with pytest.raises(
        ConfigError, match=r"tenants\.onprem\.plugin_settings\.metrics: required key is missing"
    ):
        validate(ECOSYSTEM.settings, RAW, at="tenants.onprem.plugin_settings")


def test_built_runtime_prices_a_day_from_prometheus(prometheus: PrometheusProxy) -> None:
    settings = validate(ECOSYSTEM.settings, RAW | {"metrics": {"url": prometheus.url}}, at="plugin_settings")
    budget = RetryBudget(60)
    runtime = ECOSYSTEM.build("onprem", "tenant-1", settings, budget)
    try:
        assert runtime.budget is budget and runtime.metrics.budget is budget
        assert runtime.fallback_allocator is None
        assert runtime.metrics_step_seconds == STEP_SECONDS
        assert isinstance(runtime.handler_for("SELF_KAFKA_COMPUTE"), KafkaHandler)
        assert runtime.handler_for("KAFKA_NUM_CKUS") is None
        lines = list(runtime.cost_source.gather(date(2026, 2, 1), date(2026, 2, 2)))
        assert [str(line.total_cost) for line in lines] == ["7.2000", "0.2400", "0.4500", "1.8000"]
    finally:
        runtime.close()
