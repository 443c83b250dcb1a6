"""Topic attribution of cluster lines: the splits, exclusions, mappings and missing-metrics behaviours."""

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback_assets.ecosystems.confluent_cloud.settings import (
    DEFAULT_TOPIC_COST_MAPPING,
    TopicAttributionSettings,
)
from chargeback_assets.engine.models import MetricRow
from chargeback_assets.engine.topics import (
    ATTRIBUTION_FAILED,
    TOPIC_BYTES_IN,
    TOPIC_BYTES_OUT,
    TOPIC_RETAINED_BYTES,
    UNATTRIBUTED_TOPIC,
    ClusterTopics,
    TopicLinePlan,
    TopicStatus,
    active_steps,
    attribute_day,
    attribute_line,
)

from .builders import DAY, line

DEFAULTS = TopicAttributionSettings(enabled=True)
D = Decimal


def cluster(**metrics: dict[str, int]) -> ClusterTopics:
    return ClusterTopics({key: {t: D(v) for t, v in values.items()} for key, values in metrics.items()})


FULL_DAY = {"orders": 24, "payments": 24, "__consumer_offsets": 24}
CLUSTER = cluster(
    topic_bytes_in={"orders": 300, "payments": 100, "__consumer_offsets": 600},
    topic_bytes_out={"orders": 100, "payments": 700, "_confluent-metrics": 900},
    topic_retained_bytes={"orders": 1000, "payments": 3000, "_schemas": 5000},
    topic_active_steps=FULL_DAY,
)


def attribute(product_type, total, topics=CLUSTER, mapping=None, missing="even_split", cfg=DEFAULTS):
    return attribute_line(
        line(total, product_type),
        mapping or cfg.mapping(product_type),
        topics,
        excluded=cfg.excluded,
        missing_metrics=missing,
    )


def amounts(result):
    return {row.topic: row.amount for row in result.rows}


def test_network_write_splits_by_bytes_in_without_the_excluded_internal_topic():
    result = attribute("KAFKA_NETWORK_WRITE", "100.00")
    assert amounts(result) == {"orders": D("75.0000"), "payments": D("25.0000")}
    assert {row.method for row in result.rows} == {"bytes_ratio"}
    assert result.status is TopicStatus.ATTRIBUTED


def test_network_read_splits_by_bytes_out_and_cku_by_both_directions():
    assert amounts(attribute("KAFKA_NETWORK_READ", "80.00")) == {"orders": D("10.0000"), "payments": D("70")}
    # CKU: in + out, internal topics left out: orders 400, payments 800
    assert amounts(attribute("KAFKA_NUM_CKUS", "10.00")) == {"orders": D("3.3333"), "payments": D("6.6667")}


def test_storage_splits_by_retained_bytes():
    result = attribute("KAFKA_STORAGE", "1.00")
    assert amounts(result) == {"orders": D("0.2500"), "payments": D("0.7500")}
    assert {row.method for row in result.rows} == {"retained_bytes_ratio"}


def test_a_disabled_mapping_is_recorded_with_no_rows_and_even_split_is_even():
    cfg = TopicAttributionSettings(
        enabled=True, cost_mapping_overrides={"KAFKA_STORAGE": "disabled", "KAFKA_NUM_CKUS": "even_split"}
    )
    disabled = attribute("KAFKA_STORAGE", "5.00", cfg=cfg)
    assert (disabled.status, disabled.rows, disabled.attributed) == (TopicStatus.DISABLED, (), D(0))
    even = attribute("KAFKA_NUM_CKUS", "10.00", cfg=cfg)
    assert amounts(even) == {"orders": D("5.0000"), "payments": D("5.0000")}
    assert {row.method for row in even.rows} == {"even_split"}


def test_a_topic_created_mid_day_gets_its_part_of_an_even_split():
    late = cluster(topic_active_steps={"orders": 24, "new-topic": 12})
    result = attribute("KAFKA_PARTITION", "3.00", late)
    assert amounts(result) == {"new-topic": D("1"), "orders": D("2")}
    assert {(row.method, row.detail) for row in result.rows} == {("even_split", None)}


@pytest.mark.parametrize(
    "topics", [None, ClusterTopics(fetch_failed=True)], ids=["no_metrics", "fetch_failed"]
)
def test_a_cluster_without_topic_metrics_under_each_missing_metrics_behavior(topics):
    skipped = attribute("KAFKA_NETWORK_READ", "9.00", topics, missing="skip")
    assert (skipped.status, skipped.rows) == (TopicStatus.SKIPPED, ())
    evened = attribute("KAFKA_NETWORK_READ", "9.00", topics, missing="even_split")
    assert evened.status is TopicStatus.ATTRIBUTED
    assert [(r.topic, r.amount) for r in evened.rows] == [(UNATTRIBUTED_TOPIC, D("9.00"))]
    reason = "metrics_fetch_failed" if topics else "no_topics_located"
    assert skipped.detail == evened.detail == reason


def test_topics_without_bytes_share_evenly_when_the_behaviour_is_even_split():
    idle = cluster(topic_retained_bytes={"a": 5, "b": 5}, topic_active_steps={"a": 24, "b": 24})
    result = attribute("KAFKA_NETWORK_READ", "1.00", idle)
    assert amounts(result) == {"a": D("0.5000"), "b": D("0.5000")}
    assert {row.detail for row in result.rows} == {"no_topic_bytes_out_for_topics"}
    assert attribute("KAFKA_NETWORK_READ", "1.00", idle, missing="skip").status is TopicStatus.SKIPPED


def test_a_line_that_keeps_failing_ends_as_one_failed_row_and_counts_its_attempts():
    plans = [TopicLinePlan(line("4.00", "KAFKA_STORAGE"), "no_such_mapping", CLUSTER)]
    day = attribute_day(
        plans, excluded=DEFAULTS.excluded, missing_metrics="skip", prior_attempts={}, retry_limit=3
    )
    [failed] = day.lines
    assert failed.status is TopicStatus.FAILED
    assert [(r.topic, r.amount, r.method) for r in failed.rows] == [
        (UNATTRIBUTED_TOPIC, D("4.00"), ATTRIBUTION_FAILED)
    ]
    assert failed.detail.startswith("Failed after 3 attempts: ValueError")
    assert list(day.failed_attempts.values()) == [3]


def test_active_steps_count_distinct_steps_with_a_positive_sample():
    rows = [
        MetricRow(DAY + timedelta(hours=h), key, value, {"topic": topic})
        for h in range(4)
        for key, topic, value in ((TOPIC_BYTES_IN, "a", 1.0), (TOPIC_RETAINED_BYTES, "a", 2.0))
    ] + [
        MetricRow(DAY, TOPIC_BYTES_OUT, 0.0, {"topic": "quiet"}),
        MetricRow(DAY, TOPIC_BYTES_IN, 5, {"topic": "b"}),
    ]
    assert active_steps(rows) == {"a": D(4), "b": D(1)}


topic_names = st.from_regex(r"[a-z_][a-z0-9._-]{0,8}", fullmatch=True)
weights = st.dictionaries(topic_names, st.integers(min_value=0, max_value=10**12), max_size=25)


@settings(max_examples=300, deadline=None)
@given(
    total=st.decimals(min_value=D("-500"), max_value=D("100000"), places=4),
    product_type=st.sampled_from(sorted(DEFAULT_TOPIC_COST_MAPPING)),
    bytes_in=weights,
    bytes_out=weights,
    retained=weights,
    steps=weights,
    missing=st.sampled_from(["even_split", "skip"]),
)
def test_topic_rows_always_sum_to_the_line_or_to_zero_when_skipped(
    total, product_type, bytes_in, bytes_out, retained, steps, missing
):
    topics = cluster(
        topic_bytes_in=bytes_in,
        topic_bytes_out=bytes_out,
        topic_retained_bytes=retained,
        topic_active_steps=steps,
    )
    first = attribute(product_type, str(total), topics, missing=missing)
    expected = D(0) if first.status is TopicStatus.SKIPPED else total
    assert first.attributed == expected
    assert all(not DEFAULTS.excluded(row.topic) for row in first.rows)
    assert all((row.amount >= 0) if total >= 0 else (row.amount <= 0) for row in first.rows)
    reordered = cluster(**{key: dict(reversed(values.items())) for key, values in topics.metrics.items()})
    assert attribute(product_type, str(total), reordered, missing=missing) == first
