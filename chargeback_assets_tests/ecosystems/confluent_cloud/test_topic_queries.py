"""The three topic queries against a real Prometheus: per-topic sums of one day, overridable metric names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.confluent_cloud.queries import topic_queries
from chargeback_assets.ecosystems.confluent_cloud.settings import TopicAttributionSettings
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource, summarize_usage
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.engine.models import Window
from chargeback_assets.engine.topics import active_steps
from chargeback_assets_tests.real_prometheus import Sample, running_prometheus

DAY_START = datetime(2024, 3, 4, tzinfo=UTC)
EPOCH = int(DAY_START.timestamp())
STEP = 300
RENAMED = "my_topic_retained_bytes"


def _history() -> list[Sample]:
    """A day every 5 minutes on lkc-1 (and noise on lkc-2): `orders` 10/20 bytes in/out and 1000 retained
    per sample, `late` from 12:00 only (3 in, 7 retained), `__consumer_offsets` 50 in; the retained bytes of
    `orders` are also exported under a renamed metric (x2). A sample on the next midnight belongs to the
    next day."""
    samples = []
    for k in range(0, 86400 // STEP + 1):
        t = float(EPOCH + k * STEP)
        series = [
            ("confluent_kafka_server_received_bytes", "orders", 10.0),
            ("confluent_kafka_server_sent_bytes", "orders", 20.0),
            ("confluent_kafka_server_retained_bytes", "orders", 1000.0),
            (RENAMED, "orders", 2000.0),
            ("confluent_kafka_server_received_bytes", "__consumer_offsets", 50.0),
        ]
        if k >= 86400 // STEP // 2:
            series += [
                ("confluent_kafka_server_received_bytes", "late", 3.0),
                ("confluent_kafka_server_retained_bytes", "late", 7.0),
            ]
        for metric, topic, value in series:
            samples.append(Sample(metric, t, value, {"kafka_id": "lkc-1", "topic": topic}))
        samples.append(
            Sample("confluent_kafka_server_received_bytes", t, 1.0, {"kafka_id": "lkc-2", "topic": "x"})
        )
    return samples


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), _history()) as url:
        yield url


@pytest.fixture
def source(prometheus):
    metrics = PrometheusMetricsSource(PrometheusSettings(url=prometheus), "acme")
    yield metrics
    metrics.close()


DAY = Window(DAY_START, DAY_START + timedelta(days=1))
PER_DAY = 86400 // STEP  # samples of a whole day: the next midnight's belongs to the next day
PER_HALF = PER_DAY // 2


def test_the_three_topic_queries_give_each_topics_day(source):
    queries = topic_queries(TopicAttributionSettings(enabled=True))
    got, rows = {}, []
    for query in queries:
        found = source.query_range(query, DAY, 3600, "lkc-1")
        rows += found
        got[query.key] = {r.subject: r.value for r in summarize_usage(found, query, "lkc-1")}
    assert got == {
        "topic_bytes_in": {
            "__consumer_offsets": Decimal(50 * PER_DAY),
            "late": Decimal(3 * PER_HALF),
            "orders": Decimal(10 * PER_DAY),
        },
        "topic_bytes_out": {"orders": Decimal(20 * PER_DAY)},
        "topic_retained_bytes": {"late": Decimal(7 * PER_HALF), "orders": Decimal(1000 * PER_DAY)},
    }
    assert active_steps(rows) == {"__consumer_offsets": 24, "late": 12, "orders": 24}


def test_a_renamed_metric_is_the_one_queried(source):
    settings = TopicAttributionSettings(enabled=True, metric_name_overrides={"topic_retained_bytes": RENAMED})
    [retained] = [q for q in topic_queries(settings) if q.key == "topic_retained_bytes"]
    rows = source.query_range(retained, DAY, 3600, "lkc-1")
    assert {r.subject: r.value for r in summarize_usage(rows, retained, "lkc-1")} == {
        "orders": Decimal(2000 * PER_DAY)
    }
