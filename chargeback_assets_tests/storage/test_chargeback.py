from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargeback_assets.engine.models import BillingLine, ChargebackRow, CostType
from chargeback_assets.storage.billing import line_totals_for_day, replace_billing_day
from chargeback_assets.storage.chargeback import (
    ChargebackFact,
    KnownDimensions,
    chargeback_dates,
    chargeback_facts_for_day,
    chargeback_rows_for_day,
    day_totals,
    replace_chargeback_day,
)
from chargeback_assets_tests.databases import UNIQUE_VIOLATION
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

ROW = ChargebackRow(
    ecosystem=ECO,
    tenant_id=TENANT,
    timestamp=at(),
    env_id="env-1",
    resource_id="lkc-1",
    product_category="KAFKA",
    product_type="KAFKA_NUM_CKUS",
    identity_id="sa-1",
    cost_type=CostType.USAGE,
    amount=Decimal("70.0000"),
    allocation_method="terminal",
    allocation_detail=None,
    metadata={"env_id": "env-1", "chain_tier": 0},
)


MIXED_DAY = (
    replace(ROW, timestamp=at(5), identity_id="sa-2", amount=Decimal("0.0001")),
    replace(ROW, cost_type=CostType.SHARED, allocation_detail="no_metrics_located", metadata={}),
    replace(ROW, identity_id="UNALLOCATED", resource_id=None, allocation_method=None),
    replace(ROW, timestamp=at(5), amount=Decimal("-2.5000")),
)
"""A day's rows in four dimensions: another hour and identity, a shared cost, UNALLOCATED without a resource,
and a negative amount."""


def _write(db, rows, day=DAY, tenant_id=TENANT, known=None):
    with db.transaction() as tx:
        return replace_chargeback_day(tx, ECO, tenant_id, day, rows, known)


def test_rows_of_one_dimension_are_summed_never_overwritten(db):
    second = replace(ROW, amount=Decimal("30.0000"), metadata={"env_id": "env-1", "chain_tier": 1})
    assert _write(db, [ROW, second]) == 1
    assert chargeback_rows_for_day(db, ECO, TENANT, DAY) == [
        replace(ROW, amount=Decimal("100.0000"), metadata={"env_id": "env-1"})
    ]
    assert [str(amount) for (amount,) in db.conn.execute("SELECT amount FROM chargeback_facts")] == [
        "100.0000"
    ]


def test_null_columns_are_part_of_the_dimension(db):
    org_wide = replace(ROW, resource_id=None, allocation_method=None, amount=Decimal("1.0000"))
    empty_resource = replace(ROW, resource_id="", allocation_method=None, amount=Decimal("2.0000"))
    assert _write(db, [org_wide, org_wide, empty_resource]) == 2
    assert [(r.resource_id, r.amount) for r in chargeback_rows_for_day(db, ECO, TENANT, DAY)] == [
        (None, Decimal("2.0000")),
        ("", Decimal("2.0000")),
    ]
    _write(db, [empty_resource, org_wide])
    assert db.conn.execute("SELECT COUNT(*) FROM chargeback_dimensions").fetchone() == (2,)
    with pytest.raises(UNIQUE_VIOLATION, match="idx_chargeback_dimensions_unique"):
        db.conn.execute(
            "INSERT INTO chargeback_dimensions (dimension_id, ecosystem, tenant_id, env_id, resource_id, "
            "product_category, product_type, identity_id, cost_type, allocation_method, allocation_detail) "
            "VALUES (99, ?, ?, 'env-1', NULL, 'KAFKA', 'KAFKA_NUM_CKUS', 'sa-1', 'usage', NULL, NULL)",
            (ECO, TENANT),
        )


def test_a_day_round_trips_in_a_fixed_order_and_replacing_it_reuses_dimensions(db):
    rows = [
        replace(ROW, timestamp=at(5), identity_id="sa-2", amount=Decimal("0.0001")),
        replace(ROW, cost_type=CostType.SHARED, allocation_detail="no_metrics_located", metadata={}),
        replace(
            ROW,
            identity_id="UNALLOCATED",
            allocation_method="ALLOCATION_FAILED",
            metadata={"d": date(2024, 1, 1)},
        ),
        ROW,
    ]
    assert _write(db, rows) == 4
    stored = chargeback_rows_for_day(db, ECO, TENANT, DAY)
    assert stored == [rows[2], rows[1], rows[3], rows[0]]  # timestamp, then identity, then cost type
    assert all(isinstance(r.cost_type, CostType) for r in stored)
    dimension_ids = db.conn.execute("SELECT dimension_id FROM chargeback_dimensions ORDER BY 1").fetchall()
    assert _write(db, list(reversed(rows))) == 4
    assert chargeback_rows_for_day(db, ECO, TENANT, DAY) == stored
    assert (
        db.conn.execute("SELECT dimension_id FROM chargeback_dimensions ORDER BY 1").fetchall()
        == dimension_ids
    )


def test_replacing_a_day_drops_the_dimensions_only_its_old_facts_used(db):
    next_day = DAY + timedelta(days=1)
    shared, only_old = ROW, replace(ROW, identity_id="sa-gone")
    elsewhere = replace(ROW, identity_id="sa-other")
    _write(db, [shared, only_old, elsewhere])
    _write(db, [replace(elsewhere, timestamp=at(day=next_day))], day=next_day)
    _write(db, [replace(ROW, tenant_id=OTHER_TENANT, identity_id="sa-gone")], tenant_id=OTHER_TENANT)

    _write(db, [replace(shared, amount=Decimal("1.0000"))])  # the revised day names only `shared`
    identities = db.conn.execute(
        "SELECT tenant_id, identity_id FROM chargeback_dimensions ORDER BY 1, 2"
    ).fetchall()
    assert sorted(identities) == sorted([(TENANT, "sa-1"), (TENANT, "sa-other"), (OTHER_TENANT, "sa-gone")])


def test_metadata_equal_in_python_but_not_in_json_is_stored_as_given(db):
    """1, 1.0 and True are equal (and hash alike) in Python, but each fact keeps its own JSON; nested
    metadata, which cannot be hashed, is stored too."""
    values = [1, 1.0, True, {"tier": [1, 2]}]
    rows = [
        replace(ROW, identity_id=f"sa-{i}", metadata={"env_id": "env-1", "x": value})
        for i, value in enumerate(values)
    ]
    _write(db, rows)
    stored = [r.metadata["x"] for r in chargeback_rows_for_day(db, ECO, TENANT, DAY)]
    assert [(type(value), value) for value in stored] == [(type(value), value) for value in values]


def test_replacing_a_day_leaves_other_days_and_tenants_alone(db):
    next_day = DAY + timedelta(days=1)
    _write(db, [ROW])
    _write(db, [replace(ROW, timestamp=at(day=next_day))], day=next_day)
    _write(db, [replace(ROW, tenant_id=OTHER_TENANT, amount=Decimal("5.0000"))], tenant_id=OTHER_TENANT)
    _write(db, [replace(ROW, amount=Decimal("1.0000"))])
    assert [r.amount for r in chargeback_rows_for_day(db, ECO, TENANT, DAY)] == [Decimal("1.0000")]
    assert [r.amount for r in chargeback_rows_for_day(db, ECO, TENANT, next_day)] == [Decimal("70.0000")]
    assert [r.amount for r in chargeback_rows_for_day(db, ECO, OTHER_TENANT, DAY)] == [Decimal("5.0000")]
    assert chargeback_dates(db, ECO, TENANT) == [DAY, next_day]
    assert chargeback_dates(db, ECO, OTHER_TENANT) == [DAY]
    assert chargeback_dates(db, "self_managed_kafka", TENANT) == []
    _write(db, [])
    assert chargeback_dates(db, ECO, TENANT) == [next_day]


def test_a_revised_day_updates_changed_facts_deletes_gone_ones_and_adds_new_ones(db):
    """The result is the revised day alone, whatever was stored before: a changed amount, changed
    metadata, a fact the revision no longer names, one it names first, and an amount that changes only in
    its text (the stored text is what emitters publish)."""
    kept, gone, moved, texts = ROW, replace(ROW, identity_id="sa-gone"), MIXED_DAY[0], MIXED_DAY[1]
    _write(db, [kept, gone, moved, texts])
    revised = [
        replace(kept, amount=Decimal("71.0000"), metadata={"env_id": "env-1", "chain_tier": 1}),
        replace(moved, timestamp=at(6)),
        replace(texts, amount=Decimal("70.00")),
        replace(ROW, identity_id="sa-new"),
    ]
    assert _write(db, revised) == 4
    assert chargeback_rows_for_day(db, ECO, TENANT, DAY) == sorted(
        revised, key=lambda row: (row.timestamp, row.identity_id, row.cost_type.value)
    )
    amounts = db.conn.execute("SELECT CAST(amount AS TEXT) FROM chargeback_facts ORDER BY 1").fetchall()
    assert [text for (text,) in amounts] == ["0.0001", "70.00", "70.0000", "71.0000"]
    identities = db.conn.execute("SELECT identity_id FROM chargeback_dimensions ORDER BY 1").fetchall()
    assert [identity for (identity,) in identities] == ["sa-1", "sa-1", "sa-2", "sa-new"]


def test_rewriting_a_day_writes_only_the_facts_that_changed(db):
    """A recalculated day mostly repeats what is stored: a large day is ~12,000 facts, and replacing all of
    them took three times as long as writing the few that changed. Counted with SQLite's own tally."""
    if db.dialect.name != "sqlite":
        pytest.skip("counts rows through sqlite3's total_changes; the result is checked on both backends")
    _write(db, MIXED_DAY)
    before = db.conn.total_changes
    _write(db, MIXED_DAY)
    assert db.conn.total_changes == before
    _write(db, [replace(MIXED_DAY[0], amount=Decimal("0.0002")), *MIXED_DAY[1:]])
    assert db.conn.total_changes == before + 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (replace(ROW, tenant_id=OTHER_TENANT), "belongs to .*'globex'"),
        (replace(ROW, timestamp=at() - timedelta(microseconds=1)), "outside the day 2024-03-10"),
        (replace(ROW, amount=0.7), "amount must be a Decimal, got float"),
        (replace(ROW, cost_type="bogus"), "unknown cost type 'bogus'"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(db, row, message):
    _write(db, [ROW])
    with pytest.raises((ValueError, TypeError), match=message):
        _write(db, [replace(ROW, amount=Decimal("2.0000")), row])
    assert [r.amount for r in chargeback_rows_for_day(db, ECO, TENANT, DAY)] == [Decimal("70.0000")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sa-1", "sa-2", "UNALLOCATED"]),
            st.sampled_from([None, "lkc-1"]),
            st.sampled_from(list(CostType)),
            st.integers(min_value=0, max_value=23),
            st.integers(min_value=-(10**9), max_value=10**9),
        ),
        max_size=40,
    )
)
def test_stored_facts_keep_every_cent_per_dimension(db, draws):
    rows = [
        replace(ROW, identity_id=who, resource_id=resource, cost_type=cost_type, timestamp=at(hour),
                amount=Decimal(cents).scaleb(-4), metadata={})
        for who, resource, cost_type, hour, cents in draws
    ]  # fmt: skip
    expected: dict[tuple, Decimal] = {}
    for row in rows:
        key = (row.timestamp, row.dimension)
        expected[key] = expected.get(key, Decimal(0)) + row.amount
    assert _write(db, rows) == len(expected)
    stored = chargeback_rows_for_day(db, ECO, TENANT, DAY)
    assert {(r.timestamp, r.dimension): r.amount for r in stored} == expected
    assert len(stored) == len(expected)


def test_a_day_written_after_others_reuses_their_dimensions_and_numbers_new_ones_after_the_last(db):
    _write(db, [ROW, replace(ROW, identity_id="sa-2")])
    next_day = DAY + timedelta(days=1)
    later = [replace(ROW, timestamp=at(day=next_day), identity_id=who) for who in ("sa-3", "sa-2", "sa-4")]
    _write(db, later, day=next_day)
    assert db.conn.execute(
        "SELECT identity_id, dimension_id FROM chargeback_dimensions ORDER BY dimension_id"
    ).fetchall() == [("sa-1", 1), ("sa-2", 2), ("sa-3", 3), ("sa-4", 4)]
    _write(db, [replace(ROW, resource_id=None)])  # known but for a NULL: a new dimension
    assert db.conn.execute("SELECT MAX(dimension_id) FROM chargeback_dimensions").fetchone() == (5,)


def _dimensions(db):
    return db.conn.execute(
        "SELECT dimension_id, identity_id, resource_id FROM chargeback_dimensions ORDER BY dimension_id"
    ).fetchall()


def _on(day, rows):
    return [replace(row, timestamp=at(row.timestamp.hour, day=day)) for row in rows]


def test_later_days_take_known_dimension_ids_from_memory_and_number_new_ones_after_the_last(db):
    """A step's days share their dimensions: the ids come from what its earlier days wrote."""
    known = KnownDimensions()
    days = [DAY + timedelta(days=n) for n in range(3)]
    newcomer = replace(ROW, identity_id="sa-5", amount=Decimal("1.0000"))
    for day in days:
        _write(db, _on(day, [*MIXED_DAY, newcomer] if day == days[-1] else MIXED_DAY), day=day, known=known)
        known.keep()
    assert _dimensions(db) == [
        (1, "sa-2", "lkc-1"),
        (2, "sa-1", "lkc-1"),
        (3, "UNALLOCATED", None),
        (4, "sa-1", "lkc-1"),
        (5, "sa-5", "lkc-1"),
    ]
    first = chargeback_rows_for_day(db, ECO, TENANT, days[0])
    assert chargeback_rows_for_day(db, ECO, TENANT, days[1]) == _on(days[1], first)
    assert [row.identity_id for row in chargeback_rows_for_day(db, ECO, TENANT, days[2])].count("sa-5") == 1


def test_only_the_last_days_dimensions_are_kept_and_an_older_one_is_found_in_storage(db):
    """The memory holds one day's dimensions, not every one the step met; a dimension that skipped a day
    is looked up again and keeps its id."""
    known = KnownDimensions()
    days = [DAY + timedelta(days=n) for n in range(3)]
    sa_9 = replace(ROW, identity_id="sa-9")
    for day, rows in zip(days, ([ROW, sa_9], [ROW], [ROW, sa_9]), strict=True):
        _write(db, _on(day, rows), day=day, known=known)
        known.keep()
        if day == days[1]:
            assert known.known_of([ROW.dimension, sa_9.dimension]) == {ROW.dimension: 1}
    assert _dimensions(db) == [(1, "sa-1", "lkc-1"), (2, "sa-9", "lkc-1")]
    assert [r.identity_id for r in chargeback_rows_for_day(db, ECO, TENANT, days[2])] == ["sa-1", "sa-9"]


def test_ids_a_rolled_back_write_inserted_are_not_kept(db):
    """Kept, they would name dimensions that do not exist, and the next day's facts would break the foreign
    key."""
    known = KnownDimensions()
    _write(db, [ROW], known=known)
    known.keep()
    with pytest.raises(RuntimeError, match="rolled back"):
        with db.transaction() as tx:
            replace_chargeback_day(tx, ECO, TENANT, DAY, [ROW, replace(ROW, identity_id="sa-9")], known)
            raise RuntimeError("rolled back")
    next_day = DAY + timedelta(days=1)
    _write(db, [replace(ROW, timestamp=at(day=next_day), identity_id="sa-9")], day=next_day, known=known)
    known.keep()
    assert _dimensions(db) == [(1, "sa-1", "lkc-1"), (2, "sa-9", "lkc-1")]
    assert [r.identity_id for r in chargeback_rows_for_day(db, ECO, TENANT, next_day)] == ["sa-9"]


def test_the_light_reads_give_the_rows_fields_in_the_rows_order(db):
    rows = MIXED_DAY
    _write(db, rows)
    stored = chargeback_rows_for_day(db, ECO, TENANT, DAY)
    assert chargeback_facts_for_day(db, ECO, TENANT, DAY) == [
        ChargebackFact(*r.dimension, r.amount) for r in stored
    ]
    assert chargeback_facts_for_day(db, ECO, TENANT, DAY)[0] == ChargebackFact(
        ECO,
        TENANT,
        "env-1",
        None,
        "KAFKA",
        "KAFKA_NUM_CKUS",
        "UNALLOCATED",
        "usage",
        None,
        None,
        Decimal("70.0000"),
    )
    assert chargeback_facts_for_day(db, ECO, OTHER_TENANT, DAY) == []


def test_day_totals_sum_the_facts_per_billing_line_in_all_and_for_unallocated(db):
    rows = MIXED_DAY
    _write(db, rows)
    _write(db, [replace(ROW, timestamp=at(day=DAY + timedelta(days=1)))], day=DAY + timedelta(days=1))
    totals = day_totals(db, ECO, TENANT, DAY)
    lines = {}  # each row's billing line: the line it was allocated from
    for row in rows:
        key = (row.timestamp, row.env_id, row.resource_id or "", row.product_category, row.product_type)
        lines[key] = BillingLine(
            ECO,
            TENANT,
            row.timestamp,
            row.resource_id or "",
            row.product_category,
            row.product_type,
            Decimal(1),
            Decimal(0),
            lines[key].total_cost + row.amount if key in lines else row.amount,
            env_id=row.env_id,
        )
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, list(lines.values()))
    by_line = {line.key: line.total_cost for line in line_totals_for_day(db, ECO, TENANT, DAY)}
    assert totals.by_line == by_line
    assert totals.total == sum(row.amount for row in rows)
    assert totals.unallocated == ROW.amount
    assert totals.facts == len(rows)
    assert day_totals(db, ECO, OTHER_TENANT, DAY).facts == 0
