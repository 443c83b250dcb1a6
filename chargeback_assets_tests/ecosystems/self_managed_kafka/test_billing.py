"""The self-managed Kafka cost source against a real Prometheus holding three days of history (scenario 28).

See `generic_metrics/metered_history.py` for the data: per day 45 GiB in, 90 GiB out, and 100, 200, 300 GiB
stored. Counter increases come back from PromQL as floats that are exact to ~1e-15, so quantities are
compared to 6 decimals and costs (quantized at construction) exactly.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.base import IncompleteBilling
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.self_managed_kafka.billing import kafka_cost_source
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import (
    COMPUTE,
    NETWORK_EGRESS,
    NETWORK_INGRESS,
    STORAGE,
)
from chargeback_assets.engine.models import UTC, BillingLine
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import (
    STEP_SECONDS,
    PrometheusProxy,
    spans_more_than_a_day,
)

from .settings_builders import kafka_settings

FEB_1, FEB_2, FEB_3, FEB_4, FEB_5 = (date(2026, 2, d) for d in range(1, 6))
EXPECTED_BY_DAY = {
    FEB_1: {
        COMPUTE: ("72", "7.2000"),
        STORAGE: ("2400", "0.2400"),
        NETWORK_INGRESS: ("45", "0.4500"),
        NETWORK_EGRESS: ("90", "1.8000"),
    },
    FEB_2: {
        COMPUTE: ("72", "7.2000"),
        STORAGE: ("4800", "0.4800"),
        NETWORK_INGRESS: ("45", "0.4500"),
        NETWORK_EGRESS: ("90", "1.8000"),
    },
    FEB_3: {
        COMPUTE: ("72", "7.2000"),
        STORAGE: ("7200", "0.7200"),
        NETWORK_INGRESS: ("45", "0.4500"),
        NETWORK_EGRESS: ("90", "1.8000"),
    },
}


def source(proxy: PrometheusProxy):
    settings = kafka_settings(proxy.url, metrics_step_seconds=STEP_SECONDS)
    return kafka_cost_source(
        settings, PrometheusMetricsSource(settings.metrics, "onprem"), tenant="onprem", tenant_id="tenant-1"
    )


def summary(lines: list[BillingLine]) -> dict[date, dict[str, tuple[str, str]]]:
    days: dict[date, dict[str, tuple[str, str]]] = {}
    for line in lines:
        quantity = line.quantity.quantize(Decimal("0.000001")).normalize()
        days.setdefault(line.timestamp.date(), {})[line.product_type] = (
            f"{quantity:f}",
            str(line.total_cost),
        )
    return days


def day(d: date) -> tuple[datetime, datetime]:
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return (start, start + timedelta(days=1))


def test_three_days_in_one_batch_give_twelve_lines(prometheus: PrometheusProxy) -> None:
    lines = source(prometheus).gather(FEB_1, FEB_4)
    assert summary(lines) == EXPECTED_BY_DAY
    assert prometheus.windows() == [(day(FEB_1)[0], day(FEB_3)[1])] * 3  # one range query per metric


def test_the_sample_at_midnight_belongs_to_the_day_it_opens(prometheus: PrometheusProxy) -> None:
    """Feb 1 stores 100 GiB all day; the 200 GiB sample at exactly Feb 2 00:00 must not raise its mean."""
    (storage,) = [line for line in source(prometheus).gather(FEB_1, FEB_2) if line.product_type == STORAGE]
    assert storage.quantity == Decimal(2400)
    (storage,) = [line for line in source(prometheus).gather(FEB_2, FEB_3) if line.product_type == STORAGE]
    assert storage.quantity == Decimal(4800)


def test_a_day_without_metrics_gets_no_lines(prometheus: PrometheusProxy) -> None:
    lines = source(prometheus).gather(FEB_2, FEB_5)
    assert sorted(summary(lines)) == [FEB_2, FEB_3]
    assert len(lines) == 8


def test_a_failed_batch_is_fetched_day_by_day(prometheus: PrometheusProxy) -> None:
    prometheus.fault = spans_more_than_a_day
    lines = source(prometheus).gather(FEB_1, FEB_4)
    assert summary(lines) == EXPECTED_BY_DAY
    windows = prometheus.windows()
    assert windows[0] == (day(FEB_1)[0], day(FEB_3)[1])
    assert windows[1:] == [day(FEB_1)] * 3 + [day(FEB_2)] * 3 + [day(FEB_3)] * 3


def test_a_day_that_cannot_be_fetched_fails_without_losing_the_others(prometheus: PrometheusProxy) -> None:
    """Scenario 28's "one per-day failure -> 8 lines", but the missing day is an error, never a zero bill."""
    feb_2_start = day(FEB_2)[0].timestamp()
    prometheus.fault = lambda request: (
        spans_more_than_a_day(request) or (feb_2_start < float(request.query["start"]) < feb_2_start + 86_400)
    )
    with pytest.raises(IncompleteBilling) as raised:
        source(prometheus).gather(FEB_1, FEB_4)
    assert raised.value.failed_days == (FEB_2,)
    assert summary(raised.value.lines) == {d: EXPECTED_BY_DAY[d] for d in (FEB_1, FEB_3)}
    message = str(raised.value)
    assert "onprem" in message and "self_managed_kafka" in message and "2026-02-02" in message
    assert (raised.value.tenant, raised.value.source) == ("onprem", "self_managed_kafka")


def test_a_single_failing_day_is_not_asked_twice(prometheus: PrometheusProxy) -> None:
    prometheus.fault = lambda request: True
    with pytest.raises(IncompleteBilling) as raised:
        source(prometheus).gather(FEB_1, FEB_2)
    assert raised.value.lines == []
    assert prometheus.windows() == [day(FEB_1)]
