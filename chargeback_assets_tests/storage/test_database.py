import multiprocessing
import sqlite3
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlite_utils

from chargeback_assets.engine.models import BillingLine
from chargeback_assets.storage.billing import billing_for_day, replace_billing_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.migrations import (
    MIGRATIONS,
    VERSION_TABLE,
    Migration,
    SchemaTooNewError,
    apply_migrations,
    latest_version,
)
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets_tests.storage.conftest import DAY, ECO, TENANT, at


def _schema(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def _versions(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT version, name, applied_at FROM {VERSION_TABLE} ORDER BY version"
        ).fetchall()
    finally:
        conn.close()


def _line(cost: str, resource_id: str = "lkc-1", tenant_id: str = TENANT, hour: int = 0) -> BillingLine:
    return BillingLine(
        ecosystem=ECO,
        tenant_id=tenant_id,
        timestamp=at(hour),
        resource_id=resource_id,
        product_category="KAFKA",
        product_type="KAFKA_NUM_CKUS",
        quantity=Decimal("1"),
        unit_price=Decimal(cost),
        total_cost=Decimal(cost),
    )


def test_open_sets_wal_busy_timeout_and_synchronous_normal(tmp_path):
    with ChargebackDatabase.open(tmp_path / "a.db", busy_timeout_s=12.5) as db:
        assert db.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.conn.execute("PRAGMA busy_timeout").fetchone() == (12500,)
        assert db.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_opening_twice_changes_nothing(tmp_path):
    path = tmp_path / "a.db"
    ChargebackDatabase.open(path).close()
    schema, versions = _schema(path), _versions(path)
    ChargebackDatabase.open(path).close()
    assert _schema(path) == schema
    assert _versions(path) == versions
    assert [v for v, _, _ in versions] == [m.version for m in MIGRATIONS]
    assert {name for kind, name, _, _ in schema if kind == "table"} >= {
        "billing", "resources", "identities", "chargeback_dimensions", "chargeback_facts", "pipeline_state",
        "pipeline_runs", "custom_tags", "emission_records", "usage_metrics", "usage_fetch_failures",
        "identity_resolutions", "resolution_contexts", "gather_counters", "run_leases", "billing_strays",
        VERSION_TABLE,
        "topic_metrics", "topic_metrics_failures", "topic_attribution_lines", "topic_attribution_facts",
    }  # fmt: skip


def test_old_file_gets_only_the_missing_migrations(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    assert apply_migrations(sqlite_utils.Database(conn), MIGRATIONS[:1]) == [1]
    conn.execute("COMMIT")
    conn.close()
    [(_, _, first_applied)] = _versions(path)
    with ChargebackDatabase.open(path) as db, db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("10.0000")])
    assert [(v, n) for v, n, _ in _versions(path)] == [
        (1, "seed tables"),
        (2, "asset graph tables"),
        (3, "reconciliation verdict per day"),
        (4, "run leases"),
        (5, "published outputs"),
        (6, "billing strays"),
        (7, "inventory gaps per day and per calculation"),
        (8, "billing fingerprint per stage"),
        (9, "gather failures per source"),
        (10, "topic attribution"),
        (11, "published bill per emission"),
    ]
    assert _versions(path)[0][2] == first_applied

    calls = []
    extra_version = latest_version() + 1
    extra = Migration(
        extra_version, "extra", lambda db: calls.append(db.execute("SELECT COUNT(*) FROM billing").fetchone())
    )
    with ChargebackDatabase.open(path) as db, db.transaction() as tx:
        assert apply_migrations(tx.db, (*MIGRATIONS, extra)) == [extra_version]
        assert apply_migrations(tx.db, (*MIGRATIONS, extra)) == []
    assert calls == [(1,)]  # ran once, on the existing data


def test_stages_of_a_day_calculated_after_its_bill_are_taken_to_reflect_it_and_others_are_not(tmp_path):
    """Migrations 8 and 9 on a file of version 7: which bill each stage of an existing day was built from,
    and the inventory's gather failures keep counting."""
    path = tmp_path / "v7.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    old = sqlite_utils.Database(conn)
    apply_migrations(old, MIGRATIONS[:7])
    scope = {"ecosystem": ECO, "tenant_id": TENANT}
    old.table("pipeline_state").insert_all(
        [
            {**scope, "tracking_date": "2024-03-10", "billing_fingerprint": "fp-1",
             "billing_fingerprint_at": "2024-03-11T01:00:00.000000Z",
             "calculation_completed_at": "2024-03-11T01:05:00.000000Z"},
            {**scope, "tracking_date": "2024-03-11", "billing_fingerprint": "fp-2",
             "billing_fingerprint_at": "2024-03-12T01:00:00.000000Z",
             "calculation_completed_at": "2024-03-11T23:00:00.000000Z"},
        ]
    )  # fmt: skip
    old.table("gather_counters").insert({**scope, "scan_key": "gather", "consecutive_failures": 3})
    conn.execute("COMMIT")
    conn.close()
    with ChargebackDatabase.open(path) as db:
        consistent = get_state(db, ECO, TENANT, DAY)
        stale = get_state(db, ECO, TENANT, DAY + timedelta(days=1))
        counters = db.conn.execute("SELECT scan_key, consecutive_failures FROM gather_counters").fetchall()
    built_from = ("usage_fingerprint", "resolution_fingerprint", "calculation_fingerprint")
    assert [getattr(consistent, name) for name in built_from] == ["fp-1"] * 3
    assert [getattr(stale, name) for name in built_from] == [None] * 3, "billed after its calculation"
    assert counters == [("gather:inventory", 3)]


def test_a_file_from_newer_code_is_refused(tmp_path):
    path = tmp_path / "new.db"
    ChargebackDatabase.open(path).close()
    conn = sqlite3.connect(path)
    future = latest_version() + 1
    conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES ({future}, 'future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(
        SchemaTooNewError,
        match=rf"schema version {future} is newer than this code knows \({latest_version()}\)",
    ):
        ChargebackDatabase.open(path)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"database directory .*nowhere does not exist"):
        ChargebackDatabase.open(tmp_path / "nowhere" / "x.db")


def test_exception_after_the_delete_leaves_the_previous_day_intact(db):
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("10.0000"), _line("5.0000", "lkc-2")])
    before = billing_for_day(db, ECO, TENANT, DAY)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("99.0000")])
        assert [line.total_cost for line in billing_for_day(tx, ECO, TENANT, DAY)] == [Decimal("99.0000")]
        raise Boom
    assert billing_for_day(db, ECO, TENANT, DAY) == before
    assert [line.total_cost for line in before] == [Decimal("10.0000"), Decimal("5.0000")]


def test_keyboard_interrupt_inside_a_transaction_rolls_back(db):
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("10.0000")])
    with pytest.raises(KeyboardInterrupt), db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [])
        raise KeyboardInterrupt
    assert not db.conn.in_transaction
    assert [line.total_cost for line in billing_for_day(db, ECO, TENANT, DAY)] == [Decimal("10.0000")]


def test_transactions_do_not_nest(db):
    with db.transaction(), pytest.raises(RuntimeError, match="already open"), db.transaction():
        pass


def _open_and_report(path: str, start, results) -> None:
    start.wait()
    try:
        with ChargebackDatabase.open(path) as db:
            results.put(("ok", [v for (v,) in db.conn.execute(f"SELECT version FROM {VERSION_TABLE}")]))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(("error", repr(error)))


def _write_tenant(path: str, tenant_id: str, transactions: int, start, results) -> None:
    start.wait()
    try:
        with ChargebackDatabase.open(path, busy_timeout_s=30) as db:
            for i in range(transactions):
                with db.transaction() as tx:
                    # read then write inside one transaction: the pattern a deferred BEGIN fails on
                    billing_for_day(tx, ECO, tenant_id, DAY)
                    lines = [_line(f"{i}.{k:04d}", f"lkc-{k}", tenant_id, hour=k) for k in range(3)]
                    replace_billing_day(tx, ECO, tenant_id, DAY.replace(day=1 + i % 28), [])
                    replace_billing_day(tx, ECO, tenant_id, DAY, lines)
        results.put(("ok", tenant_id))
    except BaseException as error:
        results.put(("error", repr(error)))


def _run_processes(target, args_per_process) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, start, results)) for args in args_per_process]
    for p in processes:
        p.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
        assert p.exitcode == 0
    return outcomes


@pytest.mark.slow
def test_two_processes_creating_a_new_file_at_once_get_one_schema(tmp_path):
    path = tmp_path / "fresh.db"
    outcomes = _run_processes(_open_and_report, [(str(path),), (str(path),)])
    versions = [m.version for m in MIGRATIONS]
    assert outcomes == [("ok", versions), ("ok", versions)]
    assert [(v, n) for v, n, _ in _versions(path)] == [(m.version, m.name) for m in MIGRATIONS]
    tables = [name for kind, name, _, _ in _schema(path) if kind == "table"]
    assert len(tables) == len(set(tables)) == 22


@pytest.mark.slow
def test_two_processes_writing_different_tenants_never_lock_each_other_out(tmp_path):
    path = tmp_path / "shared.db"
    ChargebackDatabase.open(path).close()
    transactions = 300
    outcomes = _run_processes(
        _write_tenant, [(str(path), "acme", transactions), (str(path), "globex", transactions)]
    )
    assert sorted(outcomes) == [("ok", "acme"), ("ok", "globex")]
    with ChargebackDatabase.open(path) as db:
        last = transactions - 1
        for tenant_id in ("acme", "globex"):
            lines = billing_for_day(db, ECO, tenant_id, DAY)
            assert [(line.resource_id, line.total_cost) for line in lines] == [
                ("lkc-0", Decimal(f"{last}.0000")),
                ("lkc-1", Decimal(f"{last}.0001")),
                ("lkc-2", Decimal(f"{last}.0002")),
            ]
            assert {line.tenant_id for line in lines} == {tenant_id}
