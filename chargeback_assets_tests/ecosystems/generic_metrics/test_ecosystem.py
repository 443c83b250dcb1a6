"""Generic metrics as a registered ecosystem: settings in, a working runtime out."""

from __future__ import annotations

from datetime import date

from chargeback_assets.ecosystems import ECOSYSTEMS
from chargeback_assets.ecosystems.generic_metrics import ECOSYSTEM
from chargeback_assets.ecosystems.generic_metrics.handlers import GenericHandler
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.validation import validate
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import STEP_SECONDS, PrometheusProxy

from .settings_builders import DISCOVERY, STORED, fixed, measured


def test_the_registry_finds_it() -> None:
    assert ECOSYSTEMS["generic_metrics"] is ECOSYSTEM
    assert ECOSYSTEM.name == "generic_metrics"


def test_built_runtime_prices_days_from_prometheus(prometheus: PrometheusProxy) -> None:
    raw = {
        "cluster_id": "gm-1",
        "metrics": {"url": prometheus.url},
        "metrics_step_seconds": STEP_SECONDS,
        "identity_source": {"discovery_query": DISCOVERY},
        "cost_types": [fixed(), measured("disk", "storage_gib", STORED, "0.0001")],
    }
    budget = RetryBudget(60)
    runtime = ECOSYSTEM.build(
        "gm", "t-1", validate(ECOSYSTEM.settings, raw, at="tenants.gm.plugin_settings"), budget
    )
    try:
        assert runtime.budget is budget and runtime.metrics.budget is budget
        assert isinstance(runtime.handler_for("disk"), GenericHandler)
        assert runtime.handler_for("SELF_KAFKA_COMPUTE") is None
        assert runtime.fallback_allocator is None
        assert runtime.metrics_step_seconds == STEP_SECONDS
        lines = list(runtime.cost_source.gather(date(2026, 2, 2), date(2026, 2, 3)))
        assert [(line.product_type, str(line.total_cost)) for line in lines] == [
            ("nodes", "180.0000"),
            ("disk", "0.4800"),
        ]
    finally:
        runtime.close()
