"""Retention: a tenant's history older than `retention_days` is dropped after each calculation."""

from __future__ import annotations

from datetime import date, timedelta

from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.retention import delete_before


def apply_retention(data: TenantData, today: date) -> tuple[date, int]:
    """Delete the tenant's days before `today - retention_days`; returns the horizon and rows deleted."""
    horizon = today - timedelta(days=data.tenant.retention_days)
    with data.db.transaction() as tx:
        deleted = delete_before(tx, data.ecosystem, data.tenant_id, horizon)
    return horizon, sum(deleted.values())
