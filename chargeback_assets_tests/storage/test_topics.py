"""The topic-attribution tables: replaced whole per (tenant, day), read back exactly; the retry counter."""

from dataclasses import replace
from decimal import Decimal

import pytest

from chargeback_assets.engine.models import BillingLine, UsageRecord
from chargeback_assets.engine.topics import LineAttribution, TopicRow, TopicStatus
from chargeback_assets.storage.billing import (
    allocation_attempts,
    increment_allocation_attempts,
    replace_billing_day,
)
from chargeback_assets.storage.topics import (
    replace_topic_attribution_day,
    replace_topic_metrics_day,
    topic_lines_for_day,
    topic_metrics_for_day,
    topic_rows_for_day,
)

from .conftest import DAY, ECO, OTHER_TENANT, TENANT, at

COUNTER = "topic_attribution_attempts"


def line(tenant: str = TENANT, total: str = "10.0000", product_type: str = "KAFKA_STORAGE") -> BillingLine:
    return BillingLine(
        ecosystem=ECO,
        tenant_id=tenant,
        timestamp=at(),
        resource_id="lkc-1",
        product_category="KAFKA",
        product_type=product_type,
        quantity=Decimal(1),
        unit_price=Decimal(total),
        total_cost=Decimal(total),
    )


def attributed(billing: BillingLine, *amounts: tuple[str, str]) -> LineAttribution:
    rows = tuple(TopicRow(topic, Decimal(amount), "retained_bytes_ratio") for topic, amount in amounts)
    return LineAttribution(billing, "retained_bytes_ratio", TopicStatus.ATTRIBUTED, rows)


def test_a_day_is_replaced_whole_and_other_tenants_keep_theirs(db):
    mine, theirs = line(), line(OTHER_TENANT)
    with db.transaction() as tx:
        replace_topic_attribution_day(tx, ECO, TENANT, DAY, [attributed(mine, ("a", "4"), ("b", "6.0000"))])
        replace_topic_attribution_day(tx, ECO, OTHER_TENANT, DAY, [attributed(theirs, ("z", "10"))])
        replace_topic_metrics_day(
            tx, ECO, TENANT, DAY, [UsageRecord("lkc-1", "topic_bytes_in", "a", Decimal("1.5"))] * 2, {}
        )
    skipped = LineAttribution(mine, "bytes_ratio", TopicStatus.SKIPPED, detail="no_topics_located")
    with db.transaction() as tx:
        assert replace_topic_attribution_day(tx, ECO, TENANT, DAY, [skipped]) == 0
        replace_topic_metrics_day(tx, ECO, TENANT, DAY, [], {"lkc-2": "503 after retries"})
    [stored] = topic_lines_for_day(db, ECO, TENANT, DAY)
    assert (stored.status, stored.detail, stored.total_cost) == ("skipped", "no_topics_located", Decimal(10))
    assert topic_rows_for_day(db, ECO, TENANT, DAY) == []
    assert [(r.topic, r.amount) for r in topic_rows_for_day(db, ECO, OTHER_TENANT, DAY)] == [
        ("z", Decimal(10))
    ]
    clusters = topic_metrics_for_day(db, ECO, TENANT, DAY)
    assert {k: (v.metrics, v.fetch_failed) for k, v in clusters.items()} == {"lkc-2": ({}, True)}


def test_repeated_metric_records_are_summed_exactly(db):
    record = UsageRecord("lkc-1", "topic_bytes_in", "a", Decimal("0.1"))
    with db.transaction() as tx:
        replace_topic_metrics_day(tx, ECO, TENANT, DAY, [record] * 3, {})
    assert topic_metrics_for_day(db, ECO, TENANT, DAY)["lkc-1"].metrics == {
        "topic_bytes_in": {"a": Decimal("0.3")}
    }


def test_the_topic_retry_counter_is_its_own_and_a_regathered_bill_resets_it(db):
    billing = line()
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [billing])
        [lid] = allocation_attempts(tx, ECO, TENANT, DAY)
        assert increment_allocation_attempts(tx, ECO, TENANT, {lid: 2}, COUNTER) == {lid: 2}
    assert allocation_attempts(db, ECO, TENANT, DAY, COUNTER) == {lid: 2}
    assert allocation_attempts(db, ECO, TENANT, DAY) == {lid: 0}
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [replace(billing, total_cost=Decimal(11))])
    assert allocation_attempts(db, ECO, TENANT, DAY, COUNTER) == {lid: 0}
    with pytest.raises(ValueError, match="unknown attempt counter"), db.transaction() as tx:
        increment_allocation_attempts(tx, ECO, TENANT, {lid: 1}, "total_cost")
