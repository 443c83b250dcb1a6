"""The PromQL range queries Confluent Cloud's product handlers need (templates: see ecosystems/prometheus.py).

The export holds per-minute deltas as gauges, so each step sums its samples (`sum_over_time`) and a day's
usage is the sum of its steps; `{}` is where the metrics source injects the resource filter.
"""

from __future__ import annotations

from chargeback_assets.ecosystems.confluent_cloud.settings import TopicAttributionSettings
from chargeback_assets.engine.models import MetricQuery
from chargeback_assets.engine.topics import TOPIC_METRIC_KEYS

_KAFKA_LABELS = ("kafka_id", "principal_id")
_FLINK_LABELS = ("compute_pool_id", "flink_statement_name")


def _kafka(key: str, metric: str) -> MetricQuery:
    return MetricQuery(
        key=key,
        query_expression=f"sum by (kafka_id, principal_id) (sum_over_time({metric}{{}}[$step]))",
        label_keys=_KAFKA_LABELS,
        resource_label="kafka_id",
        subject_label="principal_id",
    )


def _flink(key: str, metric: str) -> MetricQuery:
    return MetricQuery(
        key=key,
        query_expression=(
            f"sum by (compute_pool_id, flink_statement_name) (sum_over_time({metric}{{}}[$step]))"
        ),
        label_keys=_FLINK_LABELS,
        resource_label="compute_pool_id",
        subject_label="flink_statement_name",
    )


BYTES_IN = _kafka("bytes_in", "confluent_kafka_server_request_bytes")
BYTES_OUT = _kafka("bytes_out", "confluent_kafka_server_response_bytes")
FLINK_CFU_PRIMARY = _flink("flink_cfu_primary", "confluent_flink_num_cfu")
FLINK_CFU_FALLBACK = _flink(
    "flink_cfu_fallback", "confluent_flink_statement_utilization_cfu_minutes_consumed"
)

ALL_QUERIES = (BYTES_IN, BYTES_OUT, FLINK_CFU_PRIMARY, FLINK_CFU_FALLBACK)


def topic_queries(settings: TopicAttributionSettings) -> tuple[MetricQuery, ...]:
    """Bytes in, bytes out and retained bytes per (cluster, topic); metric names may be overridden.

    Retained bytes is a gauge: summing its samples weighs each topic by bytes x time retained, which is what
    a storage line bills (GB-hours).
    """
    return tuple(
        MetricQuery(
            key=key,
            query_expression=f"sum by (kafka_id, topic) (sum_over_time({settings.metric(key)}{{}}[$step]))",
            label_keys=("kafka_id", "topic"),
            resource_label="kafka_id",
            subject_label="topic",
        )
        for key in TOPIC_METRIC_KEYS
    )
