"""Dropping a tenant's history older than the retention horizon, in one transaction."""

from __future__ import annotations

from datetime import date

from chargeback_assets.storage.codec import day_bounds, day_text
from chargeback_assets.storage.database import Transaction

# (table, column, whether the column holds timestamps rather than dates)
_DAY_PARTITIONED = (
    ("billing", "timestamp", True),
    ("chargeback_facts", "timestamp", True),
    ("usage_metrics", "date", False),
    ("usage_fetch_failures", "date", False),
    ("identity_resolutions", "date", False),
    ("resolution_contexts", "date", False),
    ("pipeline_state", "tracking_date", False),
    ("resources", "deleted_at", True),
    ("identities", "deleted_at", True),
)


def delete_before(tx: Transaction, ecosystem: str, tenant_id: str, day: date) -> dict[str, int]:
    """Delete the tenant's rows of days before `day`; returns rows deleted per table.

    Resources and identities go only when deleted before `day` (entities never deleted are kept forever),
    and dimensions only once no fact refers to them. Emission records, runs and tags are kept: they are
    the audit trail.
    """
    cutoff_timestamp, _ = day_bounds(day)
    cutoff_date = day_text(day)
    deleted = {}
    for table, column, is_timestamp in _DAY_PARTITIONED:
        cursor = tx.conn.execute(
            f"DELETE FROM {table} WHERE ecosystem = ? AND tenant_id = ? AND {column} < ?",
            (ecosystem, tenant_id, cutoff_timestamp if is_timestamp else cutoff_date),
        )
        deleted[table] = cursor.rowcount
    cursor = tx.conn.execute(
        "DELETE FROM chargeback_dimensions WHERE ecosystem = ? AND tenant_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM chargeback_facts f WHERE f.dimension_id = chargeback_dimensions.dimension_id)",
        (ecosystem, tenant_id),
    )
    deleted["chargeback_dimensions"] = cursor.rowcount
    return deleted
