"""Three days of a Kafka cluster's metrics in a real Prometheus, reached through a fault-injecting proxy.

History, 2026-02-01 to 2026-02-03 (UTC):
- bytes in/out counters every minute for principals User:alice (broker 1, topic orders) and User:carol
  (broker 2, topic payments), each 2^24 B/min in and 2^25 B/min out, so the cluster moves exactly 45 GiB
  in and 90 GiB out a day; a third series (broker 3) has no principal label and no traffic.
- log size gauges every 5 minutes on two partitions, together 100 GiB all day on the 1st, 200 on the 2nd
  and 300 on the 3rd: the 200 GiB sample at exactly 2026-02-02T00:00 must count for the 2nd only.
Nothing is recorded on 2026-02-04. Queries use a 300 s step so each step holds five counter samples.

The proxy is our fake HTTP server forwarding `query_range` to the real Prometheus, unless the test's fault
rule matches the request, which then gets Prometheus's own 422 error shape. It records every request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests

from chargeback_assets_tests.ecosystems.http_fake import FakeHttpServer, Reply, Request
from chargeback_assets_tests.real_prometheus import Sample, running_prometheus

FIRST_DAY = datetime(2026, 2, 1, tzinfo=UTC)
DAYS = 3
STEP_SECONDS = 300
GIB = 2**30
QUERY_RANGE = "/api/v1/query_range"
BYTES_IN = "kafka_server_brokertopicmetrics_bytesin_total"
BYTES_OUT = "kafka_server_brokertopicmetrics_bytesout_total"
LOG_SIZE = "kafka_log_log_size"
SERIES = (
    ("1", "orders", "User:alice", 2**24),
    ("2", "payments", "User:carol", 2**24),
    ("3", "orders", "", 0),
)
STORAGE_GIB_BY_DAY = (100, 200, 300)
COUNTER_BASE = GIB
"""Counters start above zero so PromQL never shortens the first step's extrapolation towards zero."""


def history() -> list[Sample]:
    start = FIRST_DAY.timestamp()
    samples = []
    for broker, topic, principal, per_minute in SERIES:
        labels = {"broker": broker, "topic": topic} | ({"principal": principal} if principal else {})
        for minute in range(DAYS * 1440):
            at = start + 60 * minute
            samples.append(Sample(BYTES_IN, at, float(COUNTER_BASE + per_minute * minute), labels))
            samples.append(Sample(BYTES_OUT, at, float(COUNTER_BASE + 2 * per_minute * minute), labels))
    for day, gib in enumerate(STORAGE_GIB_BY_DAY):
        for index in range(86_400 // STEP_SECONDS):
            at = start + day * 86_400 + index * STEP_SECONDS
            for partition in ("0", "1"):
                labels = {"topic": "orders", "partition": partition}
                samples.append(Sample(LOG_SIZE, at, float(gib * GIB // 2), labels))
    return samples


class PrometheusProxy:
    """Forwards range queries to a real Prometheus; `fault` decides which requests fail instead."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fault: Callable[[Request], bool] | None = None
        self.server = FakeHttpServer()
        self.server.route(QUERY_RANGE, self._answer)
        self.url = self.server.url

    def _answer(self, request: Request) -> Reply:
        if self.fault is not None and self.fault(request):
            return Reply(422, {"status": "error", "errorType": "execution", "error": "injected fault"})
        response = requests.post(self.upstream + QUERY_RANGE, data=request.query, timeout=10)
        return Reply(response.status_code, response.json())

    def windows(self) -> list[tuple[datetime, datetime]]:
        """The `[start, end)` day window each request covered (the source asks from start+step-1ms)."""
        return [
            (
                datetime.fromtimestamp(round(float(r.query["start"]) + 0.001) - int(r.query["step"]), UTC),
                datetime.fromtimestamp(round(float(r.query["end"]) + 0.001), UTC),
            )
            for r in self.server.hits(QUERY_RANGE)
        ]

    def stop(self) -> None:
        self.server.stop()


def spans_more_than_a_day(request: Request) -> bool:
    return float(request.query["end"]) - float(request.query["start"]) > 86_400


@pytest.fixture(scope="session")
def prometheus_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), history()) as url:
        yield url


@pytest.fixture
def prometheus(prometheus_upstream: str) -> Iterator[PrometheusProxy]:
    proxy = PrometheusProxy(prometheus_upstream)
    yield proxy
    proxy.stop()
