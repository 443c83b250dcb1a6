import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from chargeback_assets.engine.models import BillingLine, ChargebackRow, CostType
from chargeback_assets.storage.billing import billing_for_day, replace_billing_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day, replace_chargeback_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.dialect import DatabaseUnavailableError
from chargeback_assets.storage.leases import Lease, leases, take_lease
from chargeback_assets.storage.migrations import (
    MIGRATIONS,
    VERSION_TABLE,
    Migration,
    SchemaTooNewError,
    apply_migrations,
    latest_version,
)
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets_tests.databases import StorageTarget
from chargeback_assets_tests.real_postgres import PASSWORD
from chargeback_assets_tests.real_prometheus import free_port
from chargeback_assets_tests.storage.conftest import DAY, ECO, TENANT, at


def _schema(db: ChargebackDatabase) -> dict[str, list[str]]:
    """Each table's columns, and each index's name (under "indexes")."""
    tables = {name: db.dialect.columns(db.conn, name) for name in sorted(db.dialect.tables(db.conn))}
    if db.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
    return {**tables, "indexes": [name for (name,) in db.conn.execute(query)]}


def _versions(db: ChargebackDatabase) -> list[tuple]:
    return [
        tuple(row)
        for row in db.conn.execute(f"SELECT version, name, applied_at FROM {VERSION_TABLE} ORDER BY version")
    ]


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


def test_opening_twice_changes_nothing(blank_storage: StorageTarget):
    with blank_storage.open() as db:
        schema, versions = _schema(db), _versions(db)
    with blank_storage.open() as db:
        assert _schema(db) == schema
        assert _versions(db) == versions
    assert [v for v, _, _ in versions] == [m.version for m in MIGRATIONS]
    assert set(schema) >= {
        "billing", "resources", "identities", "chargeback_dimensions", "chargeback_facts", "pipeline_state",
        "pipeline_runs", "custom_tags", "emission_records", "usage_metrics", "usage_fetch_failures",
        "resolution_identities", "resolution_contexts", "gather_counters", "run_leases", "billing_strays",
        VERSION_TABLE,
        "topic_metrics", "topic_metrics_failures", "topic_attribution_lines", "topic_attribution_facts",
    }  # fmt: skip
    assert "idx_chargeback_dimensions_unique" in schema["indexes"]


def test_an_old_database_gets_only_the_missing_migrations(blank_storage: StorageTarget):
    with blank_storage.open(MIGRATIONS[:1]) as db:
        [(_, _, first_applied)] = _versions(db)
    with blank_storage.open() as db, db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("10.0000")])
    with blank_storage.open() as db:
        versions = _versions(db)
    assert [(v, n) for v, n, _ in versions] == [
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
        (12, "resolution identity snapshots once per day"),
        (13, "usage query digest per day"),
    ]
    assert versions[0][2] == first_applied

    calls = []
    extra_version = latest_version() + 1
    extra = Migration(
        extra_version,
        "extra",
        lambda db: calls.append(tuple(db.execute("SELECT COUNT(*) FROM billing").fetchone())),
    )
    with blank_storage.open() as db, db.transaction() as tx:
        assert apply_migrations(tx, (*MIGRATIONS, extra)) == [extra_version]
        assert apply_migrations(tx, (*MIGRATIONS, extra)) == []
    assert calls == [(1,)]  # ran once, on the existing data


def test_stages_of_a_day_calculated_after_its_bill_are_taken_to_reflect_it_and_others_are_not(
    blank_storage: StorageTarget,
):
    """Migrations 8 and 9 on a database of version 7: which bill each stage of an existing day was built
    from, and the inventory's gather failures keep counting."""
    with blank_storage.open(MIGRATIONS[:7]) as old, old.transaction() as tx:
        tx.conn.executemany(
            "INSERT INTO pipeline_state (ecosystem, tenant_id, tracking_date, billing_fingerprint, "
            "billing_fingerprint_at, calculation_completed_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    ECO,
                    TENANT,
                    "2024-03-10",
                    "fp-1",
                    "2024-03-11T01:00:00.000000Z",
                    "2024-03-11T01:05:00.000000Z",
                ),
                (
                    ECO,
                    TENANT,
                    "2024-03-11",
                    "fp-2",
                    "2024-03-12T01:00:00.000000Z",
                    "2024-03-11T23:00:00.000000Z",
                ),
            ],
        )
        tx.conn.execute(
            "INSERT INTO gather_counters (ecosystem, tenant_id, scan_key, consecutive_failures) "
            "VALUES (?, ?, 'gather', 3)",
            (ECO, TENANT),
        )
    with blank_storage.open() as db:
        consistent = get_state(db, ECO, TENANT, DAY)
        stale = get_state(db, ECO, TENANT, DAY + timedelta(days=1))
        counters = [
            tuple(row)
            for row in db.conn.execute("SELECT scan_key, consecutive_failures FROM gather_counters")
        ]
    built_from = ("usage_fingerprint", "resolution_fingerprint", "calculation_fingerprint")
    assert [getattr(consistent, name) for name in built_from] == ["fp-1"] * 3
    assert [getattr(stale, name) for name in built_from] == [None] * 3, "billed after its calculation"
    assert counters == [("gather:inventory", 3)]


def test_a_database_from_newer_code_is_refused_naming_it(storage: StorageTarget):
    future = latest_version() + 1
    with storage.open() as db, db.transaction() as tx:
        tx.conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES (?, 'future', '2030-01-01')", (future,))
        where = db.location
    with pytest.raises(SchemaTooNewError) as refused:
        storage.open()
    assert str(refused.value) == (
        f"the chargeback database {where}: schema version {future} is newer than this code knows "
        f"({latest_version()}); upgrade the project before opening it"
    )


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


def _open_and_report(target: StorageTarget, start, results) -> None:
    start.wait()
    try:
        with target.open() as db:
            results.put(
                ("ok", [v for (v,) in db.conn.execute(f"SELECT version FROM {VERSION_TABLE} ORDER BY 1")])
            )
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(("error", repr(error)))


def _write_tenant(target: StorageTarget, tenant_id: str, transactions: int, start, results) -> None:
    start.wait()
    try:
        with target.open() as db:
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


def _write_and_wait_to_be_killed(target: StorageTarget, start, results) -> None:
    """Replace the day's bill and stop before committing, for the parent to SIGKILL."""
    start.wait()
    db = target.open()
    with db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("99.0000")])
        results.put(("written", os.getpid()))
        signal.pause()


def _run_processes(target, args_per_process, kill: bool = False) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, start, results)) for args in args_per_process]
    for p in processes:
        p.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        if kill:
            os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=30)
        assert p.exitcode == (-signal.SIGKILL if kill else 0)
    return outcomes


@pytest.mark.slow
def test_a_writer_killed_before_its_commit_leaves_the_previous_day(storage: StorageTarget):
    with storage.open() as db, db.transaction() as tx:
        replace_billing_day(tx, ECO, TENANT, DAY, [_line("10.0000"), _line("5.0000", "lkc-2")])
    [(state, _)] = _run_processes(_write_and_wait_to_be_killed, [(storage,)], kill=True)
    assert state == "written"
    with storage.open() as db:
        assert [line.total_cost for line in billing_for_day(db, ECO, TENANT, DAY)] == [
            Decimal("10.0000"),
            Decimal("5.0000"),
        ]
        with db.transaction() as tx:  # nothing the dead writer held is still locked
            replace_billing_day(tx, ECO, TENANT, DAY, [_line("7.0000")])
        assert [line.total_cost for line in billing_for_day(db, ECO, TENANT, DAY)] == [Decimal("7.0000")]


@pytest.mark.slow
def test_two_processes_creating_a_new_database_at_once_get_one_schema(blank_storage: StorageTarget):
    outcomes = _run_processes(_open_and_report, [(blank_storage,), (blank_storage,)])
    versions = [m.version for m in MIGRATIONS]
    assert outcomes == [("ok", versions), ("ok", versions)]
    with blank_storage.open() as db:
        assert [(v, n) for v, n, _ in _versions(db)] == [(m.version, m.name) for m in MIGRATIONS]
        assert len(db.dialect.tables(db.conn)) == 22


@pytest.mark.slow
def test_two_processes_writing_different_tenants_never_lock_each_other_out(storage: StorageTarget):
    storage.open().close()
    transactions = 300
    outcomes = _run_processes(
        _write_tenant, [(storage, "acme", transactions), (storage, "globex", transactions)]
    )
    assert sorted(outcomes) == [("ok", "acme"), ("ok", "globex")]
    with storage.open() as db:
        last = transactions - 1
        for tenant_id in ("acme", "globex"):
            lines = billing_for_day(db, ECO, tenant_id, DAY)
            assert [(line.resource_id, line.total_cost) for line in lines] == [
                ("lkc-0", Decimal(f"{last}.0000")),
                ("lkc-1", Decimal(f"{last}.0001")),
                ("lkc-2", Decimal(f"{last}.0002")),
            ]
            assert {line.tenant_id for line in lines} == {tenant_id}


def _write_chargeback(target: StorageTarget, tenant_id: str, transactions: int, start, results) -> None:
    """Write a day whose rows bring a new dimension each time: every transaction numbers new dimensions."""
    start.wait()
    try:
        with target.open() as db:
            for i in range(transactions):
                row = ChargebackRow(
                    ecosystem=ECO, tenant_id=tenant_id, timestamp=at(), env_id="env-1", resource_id="lkc-1",
                    product_category="KAFKA", product_type="KAFKA_NUM_CKUS", identity_id=f"sa-{i}",
                    cost_type=CostType.USAGE, amount=Decimal("1.0000"),
                )  # fmt: skip
                with db.transaction() as tx:
                    replace_chargeback_day(tx, ECO, tenant_id, DAY, [row])
        results.put(("ok", tenant_id))
    except BaseException as error:
        results.put(("error", repr(error)))


@pytest.mark.slow
def test_two_tenants_numbering_new_dimensions_at_once_never_collide(storage: StorageTarget):
    storage.open().close()
    transactions = 200
    outcomes = _run_processes(
        _write_chargeback, [(storage, "acme", transactions), (storage, "globex", transactions)]
    )
    assert sorted(outcomes) == [("ok", "acme"), ("ok", "globex")]
    with storage.open() as db:
        (count,) = db.conn.execute(
            "SELECT COUNT(DISTINCT dimension_id) FROM chargeback_dimensions"
        ).fetchone()
        assert count == 2, "each tenant's last write names one; the replaced ones went with their facts"
        for tenant_id in ("acme", "globex"):
            rows = chargeback_rows_for_day(db, ECO, tenant_id, DAY)
            assert [(r.identity_id, r.amount) for r in rows] == [
                (f"sa-{transactions - 1}", Decimal("1.0000"))
            ]


def test_a_lane_taken_in_an_open_transaction_is_not_taken_again_beside_it(storage: StorageTarget):
    """The second taker waits for the first transaction and then finds the lane held: it never reads the
    lane as free while the first, not yet committed, takes it."""
    now, ttl = at(), timedelta(minutes=5)
    outcome: list[object] = []

    def take_second() -> None:
        with storage.open() as second, second.transaction() as tx:
            outcome.append(take_lease(tx, "tenant:acme", "run-b", "host:2", now, ttl, lambda run: False))

    with storage.open() as first:
        with first.transaction() as tx:
            assert take_lease(tx, "tenant:acme", "run-a", "host:1", now, ttl, lambda run: False) is None
            taker = threading.Thread(target=take_second)
            taker.start()
            taker.join(0.5)  # gives it time to reach the lane; it must still be waiting
            assert taker.is_alive()
        taker.join(30)
        [blocker] = outcome
        assert isinstance(blocker, Lease) and blocker.run_id == "run-a"
        assert [(lease.lane, lease.run_id) for lease in leases(first)] == [("tenant:acme", "run-a")]


@pytest.mark.postgres
def test_an_unreachable_server_fails_at_once_naming_host_and_database(postgres_server):
    url = postgres_server.url("chargeback").replace(f":{postgres_server.port}/", f":{free_port()}/")
    with pytest.raises(DatabaseUnavailableError) as refused:
        ChargebackDatabase.connect(url)
    message = str(refused.value)
    assert message.startswith("cannot connect to the chargeback database postgresql://chargeback@127.0.0.1:")
    assert "/chargeback: " in message and "Connection refused" in message
    assert PASSWORD not in message and PASSWORD not in repr(refused.value)


@pytest.mark.postgres
def test_a_wrong_password_or_database_fails_naming_host_and_database_never_the_password(postgres_server):
    wrong = "wrong-" + PASSWORD
    with pytest.raises(DatabaseUnavailableError) as refused:
        ChargebackDatabase.connect(postgres_server.url("chargeback", password=wrong))
    where = f"postgresql://chargeback@127.0.0.1:{postgres_server.port}/chargeback"
    assert str(refused.value).startswith(f"cannot connect to the chargeback database {where}: ")
    assert "password authentication failed" in str(refused.value)
    assert PASSWORD not in str(refused.value) and wrong not in str(refused.value)
    with pytest.raises(DatabaseUnavailableError, match=r"/nowhere: .*database \"nowhere\" does not exist"):
        ChargebackDatabase.connect(postgres_server.url("nowhere"))


def test_a_run_on_sqlite_imports_neither_psycopg_nor_pandas(tmp_path):
    """psycopg costs every process about 9 MB and pandas with numpy about 45 MB: only a `storage.url`
    deployment needs the first, and only the DataFrame API the others (sqlite-utils would load them)."""
    script = (
        "import sys\n"
        "from chargeback_assets.definitions import build_definitions\n"
        "from chargeback_assets.storage.database import ChargebackDatabase\n"
        f"ChargebackDatabase.open({str(tmp_path / 'chargeback.db')!r}).close()\n"
        "print(sorted({'psycopg', 'pandas', 'numpy'} & set(sys.modules)))\n"
        "from chargeback_assets import frames\n"
        "print(frames.pd.__name__)\n"
    )
    imported = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert imported.stdout.split() == ["[]", "pandas"]
