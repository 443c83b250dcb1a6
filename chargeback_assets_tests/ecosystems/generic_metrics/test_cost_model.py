"""The generic metrics cost model on metric rows (scenario 32), without Prometheus.

The reference named this ecosystem "generic_metrics_only"; here it is the config value `generic_metrics`, so
that is what billing lines carry. Totals are quantized to 0.0001 at construction (DESIGN.md §6).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.generic_metrics.cost_model import price_day
from chargeback_assets.engine.models import MetricRow, Window

from .settings_builders import CLUSTER_ID, MOVED_IN, STORED, fixed, generic_settings, measured

GIB = 2**30
DAY = Window.for_day(date(2026, 2, 1))


def rows(metric_key: str, *values: float) -> list[MetricRow]:
    return [MetricRow(DAY.start + timedelta(hours=i), metric_key, v, {}) for i, v in enumerate(values)]


CASES = [
    ("32 fixed: count 3 x 24 h at 2.50", [fixed()], [], "nodes", "72", "180.0000"),
    (
        "32 storage_gib: 24 samples of 100 GiB",
        [measured("disk", "storage_gib", STORED, "0.0001")],
        rows("cost_disk", *[100 * GIB] * 24),
        "disk",
        "2400",
        "0.2400",
    ),
    (
        "32 network_gib: 10 GiB over two steps",
        [measured("net", "network_gib", MOVED_IN, "0.01")],
        rows("cost_net", 4 * GIB, 6 * GIB),
        "net",
        "10",
        "0.1000",
    ),
    (
        "storage without samples while another type has rows",
        [measured("disk", "storage_gib", STORED, "0.0001"), measured("net", "network_gib", MOVED_IN, "0.01")],
        rows("cost_net", GIB),
        "disk",
        "0",
        "0.0000",
    ),
]


@pytest.mark.parametrize(
    ("case", "cost_types", "day_rows", "product_type", "quantity", "total"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_day_lines(case, cost_types, day_rows, product_type, quantity, total) -> None:
    lines = {
        line.product_type: line for line in price_day(day_rows, DAY, generic_settings(*cost_types), "t-1")
    }
    line = lines[product_type]
    assert line.quantity == Decimal(quantity)
    assert str(line.total_cost) == total
    assert Decimal(line.metadata["raw_total_cost"]) == line.quantity * line.unit_price


def test_one_constructed_line_per_cost_type() -> None:
    settings = generic_settings(fixed(), measured("net", "network_gib", MOVED_IN, "0.01"))
    lines = price_day(rows("cost_net", GIB), DAY, settings, "t-1")
    assert [(line.product_type, line.product_category, line.unit_price) for line in lines] == [
        ("nodes", "compute", Decimal("2.50")),
        ("net", "network", Decimal("0.01")),
    ]
    for line in lines:
        assert (line.ecosystem, line.tenant_id, line.resource_id) == ("generic_metrics", "t-1", CLUSTER_ID)
        assert (line.timestamp, line.granularity, line.currency) == (DAY.start, "daily", "USD")
        assert line.provider_prorated is False


def test_a_day_without_any_row_of_its_queries_is_skipped() -> None:
    settings = generic_settings(fixed(), measured("net", "network_gib", MOVED_IN, "0.01"))
    assert price_day([], DAY, settings, "t-1") == []


def test_fixed_quantities_need_no_rows() -> None:
    (line,) = price_day([], DAY, generic_settings(fixed(count=2, rate="0.125")), "t-1")
    assert (line.quantity, line.total_cost) == (Decimal(48), Decimal("6.0000"))


def test_lines_are_in_the_settings_currency_usd_unless_told() -> None:
    (default,) = price_day([], DAY, generic_settings(fixed(count=2, rate="0.125")), "t-1")
    (euros,) = price_day([], DAY, generic_settings(fixed(count=2, rate="0.125"), currency="EUR"), "t-1")
    assert (default.currency, euros.currency) == ("USD", "EUR")
