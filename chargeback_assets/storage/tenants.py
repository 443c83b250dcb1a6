"""The tenants the database holds rows for, and deleting every row of one tenant.

A tenant's rows are the rows of every table with `ecosystem` and `tenant_id` columns (each row carries them,
DESIGN §4). The tables are read from the schema rather than listed here, so a table a later migration adds is
counted and purged without anyone remembering to add it.
"""

from __future__ import annotations

from collections.abc import Collection

from chargeback_assets.storage.database import Source, Transaction

TenantKey = tuple[str, str]
"""(ecosystem, tenant_id): how every row names its tenant."""

OUTPUTS_TABLE = "published_outputs"


def tenant_tables(source: Source) -> list[str]:
    """The tables holding per-tenant rows, each before the tables its foreign keys point at (the order their
    rows can be deleted in)."""
    conn, dialect = source.conn, source.dialect
    tables = [
        name
        for name in dialect.tables(conn)
        if {"ecosystem", "tenant_id"} <= set(dialect.columns(conn, name))
    ]
    referenced = {name: dialect.references(conn, name) for name in tables}
    ordered: list[str] = []
    pending = sorted(tables)
    while pending:
        free = [t for t in pending if not any(t in referenced[other] for other in pending if other != t)]
        if not free:  # a cycle of foreign keys: the schema has none, and the database would refuse it
            raise RuntimeError(f"tables {pending} reference each other; cannot order their deletion")
        ordered += free
        pending = [t for t in pending if t not in free]
    return ordered


def stored_tenants(source: Source) -> dict[TenantKey, dict[str, int]]:
    """Each tenant with rows anywhere, and its row count per table (tables without its rows left out)."""
    counts: dict[TenantKey, dict[str, int]] = {}
    for table in tenant_tables(source):
        for ecosystem, tenant_id, rows in source.conn.execute(
            f'SELECT ecosystem, tenant_id, COUNT(*) FROM "{table}" GROUP BY ecosystem, tenant_id'
        ):
            counts.setdefault((ecosystem, tenant_id), {})[table] = rows
    return dict(sorted(counts.items()))


def purge_tenant(
    tx: Transaction, ecosystem: str, tenant_id: str, keep_outputs: Collection[str] = ()
) -> dict[str, int]:
    """Delete every row of the tenant; returns rows deleted per table.

    `keep_outputs` are published locations whose removal failed: their `published_outputs` rows stay, so the
    tenant is still listed with exactly what is left and a later purge can finish the job.
    """
    deleted = {}
    for table in tenant_tables(tx):
        where, params = "ecosystem = ? AND tenant_id = ?", [ecosystem, tenant_id]
        if table == OUTPUTS_TABLE and keep_outputs:
            where += f" AND location NOT IN ({', '.join('?' * len(keep_outputs))})"
            params += list(keep_outputs)
        deleted[table] = tx.conn.execute(f'DELETE FROM "{table}" WHERE {where}', params).rowcount
    return deleted
