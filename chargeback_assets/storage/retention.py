"""Dropping chosen days of a tenant's history, and finding the stored days older than a horizon."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from chargeback_assets.storage.chargeback import dimensions_of_day, drop_unused_dimensions
from chargeback_assets.storage.codec import day_bounds, day_text, parse_day
from chargeback_assets.storage.database import Source, Transaction

# (table, column, whether the column holds timestamps rather than dates)
_DAY_PARTITIONED = (
    ("billing", "timestamp", True),
    ("billing_strays", "date", False),
    ("chargeback_facts", "timestamp", True),
    ("usage_metrics", "date", False),
    ("usage_fetch_failures", "date", False),
    ("resolution_identities", "date", False),
    ("resolution_contexts", "date", False),
    ("topic_metrics", "date", False),
    ("topic_metrics_failures", "date", False),
    ("topic_attribution_lines", "date", False),
    ("topic_attribution_facts", "date", False),
    ("pipeline_state", "tracking_date", False),
)
_LIFECYCLE = (("resources", "deleted_at"), ("identities", "deleted_at"))


def stored_days_before(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[date]:
    """Every day before `day` that any day-partitioned table holds for the tenant, ascending."""
    cutoff_timestamp, _ = day_bounds(day)
    days: set[date] = set()
    for table, column, is_timestamp in _DAY_PARTITIONED:
        cursor = source.conn.execute(
            f"SELECT DISTINCT substr({column}, 1, 10) FROM {table} "
            f"WHERE ecosystem = ? AND tenant_id = ? AND {column} < ?",
            (ecosystem, tenant_id, cutoff_timestamp if is_timestamp else day_text(day)),
        )
        days.update(parse_day(text) for (text,) in cursor)
    return sorted(days)


@dataclass(frozen=True, slots=True)
class Deleted:
    """Rows deleted: per day and day-partitioned table, and per table of what is not kept by day."""

    by_day: dict[date, dict[str, int]] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)
    """resources, identities (deleted long enough ago) and chargeback_dimensions (left without facts)."""


def delete_days(
    tx: Transaction, ecosystem: str, tenant_id: str, days: Iterable[date], entities_deleted_before: date
) -> Deleted:
    """Delete the tenant's rows of exactly `days`.

    Resources and identities go only when deleted before `entities_deleted_before` (entities never deleted
    are kept forever), and dimensions only once no fact refers to them. Emission records, runs and tags are
    kept: they are the audit trail.
    """
    deleted = Deleted()
    dimensions: set[int] = set()
    for day in sorted(set(days)):
        start, end = day_bounds(day)
        counts = deleted.by_day[day] = {}
        dimensions |= dimensions_of_day(tx, ecosystem, tenant_id, day)
        for table, column, is_timestamp in _DAY_PARTITIONED:
            if is_timestamp:
                where, values = f"{column} >= ? AND {column} < ?", (start, end)
            else:
                where, values = f"{column} = ?", (day_text(day),)
            cursor = tx.conn.execute(
                f"DELETE FROM {table} WHERE ecosystem = ? AND tenant_id = ? AND {where}",
                (ecosystem, tenant_id, *values),
            )
            counts[table] = cursor.rowcount
    cutoff, _ = day_bounds(entities_deleted_before)
    for table, column in _LIFECYCLE:
        cursor = tx.conn.execute(
            f"DELETE FROM {table} WHERE ecosystem = ? AND tenant_id = ? AND {column} < ?",
            (ecosystem, tenant_id, cutoff),
        )
        deleted.other[table] = cursor.rowcount
    deleted.other["chargeback_dimensions"] = drop_unused_dimensions(tx, dimensions)
    return deleted
