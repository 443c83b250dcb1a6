from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargeback_assets.engine import fingerprint
from chargeback_assets.engine.fingerprint import billing_fingerprint, line_id

from .builders import line


def test_line_id_depends_on_the_key_only() -> None:
    assert line_id(line("1")) == line_id(line("2"))
    assert line_id(line("1")) != line_id(line("1", env_id="env-2"))


def test_fingerprint_ignores_order_and_sees_every_amount_change() -> None:
    a, b = line("1"), line("2", product_type="KAFKA_BASE")
    assert billing_fingerprint([a, b]) == billing_fingerprint([b, a])
    revised = line("2.0001", product_type="KAFKA_BASE")
    assert billing_fingerprint([a, revised]) != billing_fingerprint([a, b])
    assert billing_fingerprint(
        [a, line("2", product_type="KAFKA_BASE", total_cost=Decimal(2))]
    ) == billing_fingerprint([a, b])


def test_the_ids_of_a_90_day_large_range_are_computed_once_for_all_its_steps() -> None:
    """Each step walks every day of the run before the next one asks again: 90 days of ~700 lines."""
    first = datetime(2026, 1, 1, tzinfo=UTC)
    lines = [
        line("1", timestamp=first + timedelta(days=n // 700), resource_id=f"lkc-{n % 700}")
        for n in range(63_000)
    ]
    ids = [line_id(each) for each in lines]  # the first step
    before = fingerprint._id_of_key.cache_info()
    assert [line_id(each) for each in lines] == ids  # the next step
    after = fingerprint._id_of_key.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (len(lines), 0)
