"""The generic metrics cost source against a real Prometheus (scenario 32's I/O cases).

History: `metered_history.py` (per day 45 GiB in; 100, 200, 300 GiB stored; nothing on Feb 4).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.base import IncompleteBilling
from chargeback_assets.ecosystems.generic_metrics.billing import generic_cost_source
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import STEP_SECONDS, PrometheusProxy

from .settings_builders import MOVED_IN, STORED, fixed, generic_settings, measured

FEB_1, FEB_4, FEB_6 = date(2026, 2, 1), date(2026, 2, 4), date(2026, 2, 6)


def source(proxy: PrometheusProxy, *cost_types: dict):
    settings = generic_settings(*cost_types, url=proxy.url, metrics_step_seconds=STEP_SECONDS)
    metrics = PrometheusMetricsSource(settings.metrics, "gm")
    return generic_cost_source(settings, metrics, tenant="gm", tenant_id="t-1")


def test_one_type_over_three_days_gives_three_lines(prometheus: PrometheusProxy) -> None:
    lines = source(prometheus, measured("disk", "storage_gib", STORED, "0.0001")).gather(FEB_1, FEB_4)
    assert [(line.timestamp.day, line.quantity, str(line.total_cost)) for line in lines] == [
        (1, Decimal(2400), "0.2400"),
        (2, Decimal(4800), "0.4800"),
        (3, Decimal(7200), "0.7200"),
    ]
    assert len(prometheus.server.hits("/api/v1/query_range")) == 1


def test_network_gib_sums_the_day(prometheus: PrometheusProxy) -> None:
    (line,) = source(prometheus, measured("net", "network_gib", MOVED_IN, "0.01")).gather(
        FEB_1, date(2026, 2, 2)
    )
    assert line.quantity.quantize(Decimal("0.000001")) == Decimal(45)
    assert str(line.total_cost) == "0.4500"


def test_fixed_only_never_queries(prometheus: PrometheusProxy) -> None:
    lines = source(prometheus, fixed()).gather(FEB_4, FEB_6)
    assert [(line.timestamp.day, line.quantity, str(line.total_cost)) for line in lines] == [
        (4, Decimal(72), "180.0000"),
        (5, Decimal(72), "180.0000"),
    ]
    assert prometheus.server.hits("/api/v1/query_range") == []


def test_all_queries_empty_gives_no_lines(prometheus: PrometheusProxy) -> None:
    assert (
        source(prometheus, fixed(), measured("disk", "storage_gib", STORED, "0.0001")).gather(FEB_4, FEB_6)
        == []
    )


def test_a_query_error_gives_no_lines_and_names_the_day(prometheus: PrometheusProxy) -> None:
    prometheus.fault = lambda request: True
    with pytest.raises(IncompleteBilling) as raised:
        source(prometheus, fixed(), measured("disk", "storage_gib", STORED, "0.0001")).gather(
            FEB_1, date(2026, 2, 3)
        )
    assert raised.value.lines == []
    assert raised.value.failed_days == (FEB_1, date(2026, 2, 2))
    assert "generic_metrics" in str(raised.value) and "2026-02-01" in str(raised.value)
