"""The self-managed Kafka cost model on metric rows (scenarios 25-27), without Prometheus.

Totals are quantized to 0.0001 ROUND_HALF_UP when the line is constructed (DESIGN.md §6), so the docs'
"≈0.2440" of scenario 27 is exactly 0.2440 here and the unrounded product stays in `raw_total_cost`.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.self_managed_kafka.cost_model import (
    COMPUTE,
    NETWORK_EGRESS,
    NETWORK_INGRESS,
    STORAGE,
    price_day,
)
from chargeback_assets.engine.bill_quality import is_malformed, screen_amount
from chargeback_assets.engine.models import UTC, MetricRow, Window
from chargeback_assets.validation import ConfigError

from .settings_builders import CLUSTER_ID, kafka_settings

GIB = 2**30
DAY = Window.for_day(date(2026, 2, 1))


def rows(metric_key: str, *values: float) -> list[MetricRow]:
    """One row per hour of the day, in order."""
    return [MetricRow(DAY.start + timedelta(hours=i), metric_key, v, {}) for i, v in enumerate(values)]


def traffic(gib_in: float = 1, gib_out: float = 1) -> list[MetricRow]:
    return rows("cluster_bytes_in", gib_in * GIB) + rows("cluster_bytes_out", gib_out * GIB)


def by_type(lines: list) -> dict:
    return {line.product_type: line for line in lines}


OVERRIDDEN_REGION = {
    "region": "us-west-2",
    "cost_model": {
        "compute_hourly_rate": "0.10",
        "storage_per_gib_hourly": "0.0001",
        "network_ingress_per_gib": "0.01",
        "network_egress_per_gib": "0.02",
        "region_overrides": {"us-west-2": {"compute_hourly_rate": "0.08"}},
    },
}
COMPUTE_AT_050 = {
    "cost_model": {
        "compute_hourly_rate": "0.50",
        "storage_per_gib_hourly": "0.0001",
        "network_ingress_per_gib": "0.01",
        "network_egress_per_gib": "0.02",
    }
}
CASES = [
    ("25 compute: 3 brokers x 24 h", traffic(), {}, COMPUTE, "72", "0.10", "7.2000"),
    (
        "26 storage: 24 samples of 100 GiB",
        rows("cluster_storage_bytes", *[100 * GIB] * 24) + traffic(),
        {},
        STORAGE,
        "2400",
        "0.0001",
        "0.2400",
    ),
    ("26 storage: no samples, traffic present", traffic(), {}, STORAGE, "0", "0.0001", "0.0000"),
    (
        "26 ingress 10 GiB in two steps",
        traffic(gib_in=5) + rows("cluster_bytes_in", 5 * GIB),
        {},
        NETWORK_INGRESS,
        "10",
        "0.01",
        "0.1000",
    ),
    ("26 egress 20 GiB", traffic(gib_out=20), {}, NETWORK_EGRESS, "20", "0.02", "0.4000"),
    ("26 region override of compute", traffic(), OVERRIDDEN_REGION, COMPUTE, "72", "0.08", "5.7600"),
    (
        "26 region override leaves egress",
        traffic(gib_out=20),
        OVERRIDDEN_REGION,
        NETWORK_EGRESS,
        "20",
        "0.02",
        "0.4000",
    ),
    (
        "27 storage 100/105/100 GiB: mean 101.6667 GiB x 24 h",
        traffic() + rows("cluster_storage_bytes", 100 * GIB, 105 * GIB, 100 * GIB),
        {},
        STORAGE,
        "2440",
        "0.0001",
        "0.2440",
    ),
    ("27 compute at 0.50", traffic(), COMPUTE_AT_050, COMPUTE, "72", "0.50", "36.0000"),
    ("27 ingress 50 GiB", traffic(gib_in=50), {}, NETWORK_INGRESS, "50", "0.01", "0.5000"),
    (
        "half-up: 0.005 GiB x 0.01 = 0.00005",
        traffic(gib_in=0.005),
        {},
        NETWORK_INGRESS,
        "0.005",
        "0.01",
        "0.0001",
    ),
]


@pytest.mark.parametrize(
    ("case", "day_rows", "overrides", "product_type", "quantity", "unit_price", "total"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_day_lines(case, day_rows, overrides, product_type, quantity, unit_price, total) -> None:
    line = by_type(price_day(day_rows, DAY, kafka_settings(**overrides), "tenant-1"))[product_type]
    assert line.quantity == Decimal(quantity)
    assert line.unit_price == Decimal(unit_price)
    assert line.total_cost == Decimal(total)
    assert str(line.total_cost) == total
    assert Decimal(line.metadata["raw_total_cost"]) == Decimal(quantity) * Decimal(unit_price)


def test_every_day_has_four_constructed_daily_lines_at_midnight() -> None:
    lines = price_day(traffic(), DAY, kafka_settings(), "tenant-1")
    assert sorted(line.product_type for line in lines) == sorted(
        [COMPUTE, STORAGE, NETWORK_INGRESS, NETWORK_EGRESS]
    )
    for line in lines:
        assert line.timestamp.isoformat() == "2026-02-01T00:00:00+00:00"
        assert line.timestamp.tzinfo is UTC
        assert (line.ecosystem, line.tenant_id, line.resource_id) == (
            "self_managed_kafka",
            "tenant-1",
            CLUSTER_ID,
        )
        assert (line.product_category, line.granularity, line.currency) == ("kafka", "daily", "USD")
        assert line.provider_prorated is False


def test_a_day_without_rows_is_skipped() -> None:
    assert price_day([], DAY, kafka_settings(), "tenant-1") == []


def test_raw_total_keeps_what_quantization_dropped() -> None:
    line = by_type(price_day(traffic(gib_in=1 / 3), DAY, kafka_settings(), "t"))[NETWORK_INGRESS]
    raw = Decimal(line.metadata["raw_total_cost"])
    assert line.total_cost == Decimal("0.0033")
    assert raw != line.total_cost
    assert abs(raw - Decimal("0.00333333")) < Decimal("0.00000001")


def test_an_absurd_metric_gives_a_line_the_billing_stage_refuses_instead_of_failing_the_day() -> None:
    """1e40 bytes in prices beyond what 0.0001 can hold: the line is handed on unrounded (not a bare
    InvalidOperation), and the billing stage's max_line_amount rule keeps it, charging nothing."""
    lines = by_type(price_day(traffic(gib_in=1e40 / GIB), DAY, kafka_settings(), "tenant-1"))
    ingress = lines[NETWORK_INGRESS]
    assert ingress.total_cost > Decimal(10) ** 24  # 28 digits hold no 0.0001 of it
    screened = screen_amount(ingress, Decimal(10_000_000))
    assert is_malformed(screened) and screened.total_cost == 0
    assert screened.metadata["raw_amount"] == str(ingress.total_cost)
    assert screened.metadata["parse_error"] == "amount exceeds max_line_amount 10000000"
    assert lines[COMPUTE].total_cost == Decimal("7.2000")


def test_the_cost_model_prices_in_its_currency_and_refuses_what_is_not_a_currency_code() -> None:
    model = {
        "compute_hourly_rate": "0.10",
        "storage_per_gib_hourly": "0.0001",
        "network_ingress_per_gib": "0.01",
        "network_egress_per_gib": "0.02",
    }
    lines = price_day(traffic(), DAY, kafka_settings(cost_model={**model, "currency": "EUR"}), "tenant-1")
    assert {line.currency for line in lines} == {"EUR"}
    with pytest.raises(ConfigError, match=r"plugin_settings\.cost_model\.currency.*ISO 4217"):
        kafka_settings(cost_model={**model, "currency": "euro"})
