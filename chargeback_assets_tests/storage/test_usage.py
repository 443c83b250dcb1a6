from datetime import timedelta
from decimal import Decimal

from chargeback_assets.engine.models import UsageRecord
from chargeback_assets.storage.usage import replace_usage_day, usage_failures_for_day, usage_for_day
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT


def test_usage_and_failures_round_trip_and_repeated_keys_are_summed(db):
    records = [
        UsageRecord("lkc-1", "bytes_in", "sa-1", Decimal("7000")),
        UsageRecord("lkc-1", "bytes_in", "sa-2", Decimal("0.5")),
        UsageRecord("lkc-1", "bytes_out", "sa-1", Decimal("3000")),
        UsageRecord("lkc-1", "bytes_in", "sa-1", Decimal("12.25")),
    ]
    with db.transaction() as tx:
        assert replace_usage_day(tx, ECO, TENANT, DAY, records, {"lkc-9": "HTTP 503 from prometheus"}) == 3
    assert usage_for_day(db, ECO, TENANT, DAY) == {
        "lkc-1": {
            "bytes_in": {"sa-1": Decimal("7012.25"), "sa-2": Decimal("0.5")},
            "bytes_out": {"sa-1": Decimal("3000")},
        }
    }
    assert usage_failures_for_day(db, ECO, TENANT, DAY) == {"lkc-9": "HTTP 503 from prometheus"}
    assert usage_for_day(db, ECO, OTHER_TENANT, DAY) == {}
    assert usage_for_day(db, ECO, TENANT, DAY + timedelta(days=1)) == {}


def test_replacing_a_day_drops_the_old_usage_and_failures(db):
    with db.transaction() as tx:
        replace_usage_day(tx, ECO, TENANT, DAY, [UsageRecord("lkc-1", "m", "a", Decimal(1))], {"lkc-2": "x"})
        replace_usage_day(
            tx, ECO, TENANT, DAY + timedelta(days=1), [UsageRecord("lkc-1", "m", "a", Decimal(5))], {}
        )
    with db.transaction() as tx:
        replace_usage_day(tx, ECO, TENANT, DAY, [UsageRecord("lkc-3", "m", "b", Decimal(2))], {})
    assert usage_for_day(db, ECO, TENANT, DAY) == {"lkc-3": {"m": {"b": Decimal(2)}}}
    assert usage_failures_for_day(db, ECO, TENANT, DAY) == {}
    assert usage_for_day(db, ECO, TENANT, DAY + timedelta(days=1)) == {"lkc-1": {"m": {"a": Decimal(5)}}}
