"""Retention: after each calculation, a tenant's days older than `retention_days` are dropped, within limits.

A retention that follows the run's clock alone can destroy what the run just computed (a backfill of days
older than the horizon) or, with a clock that jumped ahead, the whole history. So a run never removes a day
it was asked to compute, never removes more than `retention_max_days_per_run` days (a larger jump is refused,
and nothing is removed), and says which days it removed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

from chargeback_assets.stages.scope import StageError, TenantData, describe_days
from chargeback_assets.storage.retention import Deleted, delete_days, stored_days_before


@dataclass(frozen=True, slots=True)
class Retention:
    """What one run's retention did for a tenant."""

    horizon: date
    """Days before it are past retention."""
    kept: tuple[date, ...] = ()
    """Days past retention that the run computed, so they stay (until a later run's retention)."""
    deleted: Deleted = field(default_factory=Deleted)

    @property
    def removed(self) -> list[date]:
        return sorted(self.deleted.by_day)

    @property
    def rows(self) -> int:
        return sum(n for counts in self.deleted.by_day.values() for n in counts.values()) + sum(
            self.deleted.other.values()
        )


def apply_retention(data: TenantData, today: date, computed: Collection[date]) -> Retention:
    """Delete the tenant's stored days before `today - retention_days`, except the days of `computed`.

    Raises `StageError`, removing nothing, when that would remove more than `retention_max_days_per_run`.
    """
    tenant = data.tenant
    horizon = today - timedelta(days=tenant.retention_days)
    with data.db.transaction() as tx:
        expired = stored_days_before(tx, data.ecosystem, data.tenant_id, horizon)
        removed = [day for day in expired if day not in computed]
        kept = tuple(day for day in expired if day in computed)
        if len(removed) > tenant.retention_max_days_per_run:
            raise StageError(
                f"tenant {tenant.name}: retention refused, nothing removed: the run's date {today} minus "
                f"retention_days ({tenant.retention_days}) would remove the stored {describe_days(removed)}, "
                f"more than retention_max_days_per_run "
                f"({tenant.retention_max_days_per_run}) allows in one run. If the clock is right, raise "
                f"tenants.{tenant.name}.retention_max_days_per_run to {len(removed)} for one run."
            )
        # an entity the computed days may still read (deleted on or after the first of them) stays too
        entities_before = min([horizon, *computed])
        deleted = delete_days(tx, data.ecosystem, data.tenant_id, removed, entities_before)
    return Retention(horizon, kept, deleted)
