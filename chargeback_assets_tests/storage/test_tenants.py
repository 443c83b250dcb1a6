"""Which tenants the database holds, and deleting one tenant's rows, over a real SQLite file."""

from datetime import UTC, date, datetime

from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import record_emission, record_outputs
from chargeback_assets.storage.tenants import purge_tenant, stored_tenants, tenant_tables

ECO = "confluent_cloud"


def test_every_table_with_tenant_columns_is_a_tenant_table_and_facts_go_before_their_dimensions(
    tmp_path,
) -> None:
    with ChargebackDatabase.open(tmp_path / "cb.db") as db:
        tables = tenant_tables(db)
        with_columns = [
            name
            for (name,) in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if {"ecosystem", "tenant_id"}
            <= {row[1] for row in db.conn.execute(f'PRAGMA table_info("{name}")')}
        ]
    assert sorted(tables) == sorted(with_columns)
    assert {"billing", "chargeback_facts", "custom_tags", "pipeline_runs", "published_outputs"} <= set(tables)
    assert "run_leases" not in tables
    assert tables.index("chargeback_facts") < tables.index("chargeback_dimensions")


def test_purging_a_tenant_deletes_its_rows_only_and_keeps_the_outputs_it_is_told_to(tmp_path) -> None:
    now = datetime.now(UTC)
    with ChargebackDatabase.open(tmp_path / "cb.db") as db:
        with db.transaction() as tx:
            for tenant in ("old", "live"):
                record_emission(tx, ECO, tenant, "files", "chargeback", date(2026, 3, 1), "emitted", now)
                record_outputs(tx, ECO, tenant, "files", [f"/out/{tenant}.csv", f"/out/{tenant}.om"], now)
        before = stored_tenants(db)
        assert before[(ECO, "old")] == {"emission_records": 1, "published_outputs": 2}
        with db.transaction() as tx:
            deleted = purge_tenant(tx, ECO, "old", keep_outputs=["/out/old.om"])
        left = {"published_outputs": 1}
        assert {table: n for table, n in deleted.items() if n} == {"emission_records": 1, **left}
        assert stored_tenants(db) == {(ECO, "live"): before[(ECO, "live")], (ECO, "old"): left}
