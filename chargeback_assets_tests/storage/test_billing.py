import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from chargeback_assets.engine.models import BillingLine
from chargeback_assets.storage.billing import (
    allocation_attempts,
    billing_for_day,
    billing_strays_for_day,
    increment_allocation_attempts,
    line_id,
    line_totals_for_day,
    malformed_billing_for_day,
    replace_billing_day,
)
from chargeback_assets.storage.codec import timestamp_text
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

CKU = BillingLine(
    ecosystem=ECO,
    tenant_id=TENANT,
    timestamp=at(),
    env_id="env-1",
    resource_id="lkc-1",
    product_category="KAFKA",
    product_type="KAFKA_NUM_CKUS",
    quantity=Decimal("24.000000"),
    unit_price=Decimal("0.000012345"),
    total_cost=Decimal("12.3400"),
    currency="USD",
    granularity="daily",
    provider_prorated=False,
    metadata={"original_amount": Decimal("12.34"), "discounts": ["promo"], "tier": 2},
)
ORG = replace(CKU, env_id="", resource_id="", product_category="SUPPORT", product_type="SUPPORT", metadata={})


def test_line_id_is_the_sha256_of_the_seven_field_key():
    key = [ECO, TENANT, "2024-03-10T00:00:00.000000Z", "env-1", "lkc-1", "KAFKA_NUM_CKUS", "KAFKA"]
    assert line_id(CKU) == hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()
    assert line_id(replace(CKU, total_cost=Decimal("99"), metadata={})) == line_id(CKU)
    assert line_id(replace(CKU, env_id="env-2")) != line_id(CKU)


def test_a_day_round_trips_exactly_in_key_order(db):
    hourly = replace(CKU, timestamp=at(23, 59), granularity="hourly", provider_prorated=True)
    with db.transaction() as tx:
        assert replace_billing_day(tx, ECO, TENANT, DAY, [hourly, CKU, ORG]) == 3
    lines = billing_for_day(db, ECO, TENANT, DAY)
    assert lines == [ORG, CKU, hourly]
    assert str(lines[1].unit_price) == "0.000012345" and str(lines[1].total_cost) == "12.3400"
    assert lines[1].timestamp.tzinfo is not None and lines[1].timestamp.utcoffset() == timedelta(0)
    assert billing_for_day(db, ECO, TENANT, DAY + timedelta(days=1)) == []


def test_line_totals_are_the_lines_keys_and_costs_in_the_same_order(db):
    euro = replace(CKU, timestamp=at(23, 59), total_cost=Decimal("-0.0001"), currency="EUR")
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [euro, CKU, ORG])
    totals = line_totals_for_day(db, ECO, TENANT, DAY)
    assert [(t.key, t.total_cost, t.currency) for t in totals] == [
        (
            (
                timestamp_text(line.timestamp, "test"),
                line.env_id,
                line.resource_id,
                line.product_type,
                line.product_category,
            ),
            line.total_cost,
            line.currency,
        )
        for line in billing_for_day(db, ECO, TENANT, DAY)
    ]
    assert [(t.product_type, t.resource_id) for t in totals] == [
        ("SUPPORT", ""),
        ("KAFKA_NUM_CKUS", "lkc-1"),
        ("KAFKA_NUM_CKUS", "lkc-1"),
    ]
    assert str(totals[2].total_cost) == "-0.0001"
    assert line_totals_for_day(db, ECO, OTHER_TENANT, DAY) == []


def test_money_is_exact_text_in_sqlite_and_numeric_in_postgres(db):
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU])
    if db.dialect.name == "sqlite":
        stored = db.conn.execute("SELECT typeof(total_cost), total_cost FROM billing").fetchone()
        assert stored == ("text", "12.3400")
    else:
        stored = db.conn.execute("SELECT pg_typeof(total_cost)::text, total_cost FROM billing").fetchone()
        assert stored == ("numeric", Decimal("12.3400"))
        assert str(stored[1]) == "12.3400"  # the scale written is the scale read


def test_another_tenant_never_sees_the_bill(db):
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU])
        replace_billing_day(tx, ECO, OTHER_TENANT, DAY, [])
    assert billing_for_day(db, ECO, OTHER_TENANT, DAY) == []
    assert billing_for_day(db, "self_managed_kafka", TENANT, DAY) == []
    assert len(billing_for_day(db, ECO, TENANT, DAY)) == 1


def test_attempts_add_up_per_line(db):
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU, ORG])
        assert increment_allocation_attempts(tx, ECO, TENANT, {line_id(CKU): 1, line_id(ORG): 3}) == {
            line_id(CKU): 1,
            line_id(ORG): 3,
        }
        assert increment_allocation_attempts(tx, ECO, TENANT, {line_id(CKU): 2}) == {line_id(CKU): 3}
    assert allocation_attempts(db, ECO, TENANT, DAY) == {line_id(CKU): 3, line_id(ORG): 3}


def test_regathering_a_day_starts_every_line_over_even_with_the_same_key(db):
    """core-engine-spec §1.2 B step 7: a line that used up its attempts on the old bill gets all of them
    again."""
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU, ORG])
        increment_allocation_attempts(tx, ECO, TENANT, {line_id(CKU): 3, line_id(ORG): 1})
    new_line = replace(CKU, resource_id="lkc-2")
    revised = replace(CKU, total_cost=Decimal("13.0000"))
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [revised, ORG, new_line])
    assert allocation_attempts(db, ECO, TENANT, DAY) == {
        line_id(CKU): 0,
        line_id(ORG): 0,
        line_id(new_line): 0,
    }


def test_incrementing_an_unknown_line_is_refused(db):
    with pytest.raises(ValueError, match="no billing line nope for tenant"), db.transaction() as tx:
        increment_allocation_attempts(tx, ECO, TENANT, {"nope": 1})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (replace(CKU, tenant_id=OTHER_TENANT), "belongs to .*'globex'.*not to the tenant being written"),
        (replace(CKU, timestamp=at() + timedelta(days=1)), "outside the day 2024-03-10"),
        (replace(CKU, total_cost=12.34), "total_cost must be a Decimal, got float"),
        (replace(CKU, metadata={"when": {1, 2}}), "metadata.when: cannot store a set"),
    ],
)
def test_bad_lines_are_refused_naming_the_line(db, line, message):
    with pytest.raises((ValueError, TypeError), match=message), db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [line])
    assert db.conn.execute("SELECT COUNT(*) FROM billing").fetchone() == (0,)


def test_two_lines_with_one_key_are_refused(db):
    with pytest.raises(ValueError, match=r"billing line lkc-1/KAFKA_NUM_CKUS .* appears twice"):
        with db.transaction() as tx:
            replace_billing_day(tx, ECO, TENANT, DAY, [CKU, replace(CKU, total_cost=Decimal("1"))])


def test_strays_are_kept_with_the_day_they_came_with_and_replaced_with_it(db):
    stray = replace(CKU, timestamp=at(day=DAY - timedelta(days=40)), metadata={"row_id": "dlz-9"})
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU], [stray])
    assert billing_strays_for_day(db, ECO, TENANT, DAY) == [stray]
    assert billing_for_day(db, ECO, TENANT, DAY) == [CKU]  # a stray is charged to no day
    assert billing_for_day(db, ECO, TENANT, stray.timestamp.date()) == []
    assert billing_strays_for_day(db, ECO, OTHER_TENANT, DAY) == []
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU])
    assert billing_strays_for_day(db, ECO, TENANT, DAY) == []
    with pytest.raises(ValueError, match=r"appears twice in the strays reported with 2024-03-10"):
        with db.transaction() as tx:
            replace_billing_day(tx, ECO, TENANT, DAY, [], [stray, stray])


def test_the_malformed_lines_of_a_day_are_found_alone(db):
    bad = replace(
        CKU,
        resource_id="malformed_billing_1",
        total_cost=Decimal("0.0000"),
        metadata={"malformed": True, "parse_error": "amount is missing"},
    )
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [CKU, bad, ORG])
    assert malformed_billing_for_day(db, ECO, TENANT, DAY) == [bad]
    assert malformed_billing_for_day(db, ECO, TENANT, DAY + timedelta(days=1)) == []
