"""Resources and identities: one gather per tenant per run, lifecycle upserts, careful deletion detection.

An entity missing from a gather is marked deleted only when the gather of its kind succeeded. A gather that
returns nothing at all while entities are active is treated as suspect (an API hiccup looks exactly like
that): deletion then waits for `zero_gather_deletion_threshold` consecutive empty gathers (-1: never).
Counters live in the database because every Dagster run is a fresh process. A gather that saw nothing at all
counts towards the tenant's suspension (stages/suspension.py).

A gather that saw something but not everything (an endpoint still failing after the retries) is kept, and
what failed is recorded on each of the run's days: a chargeback calculated from it is not published until a
complete gather (see the `inventory_complete` check).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from chargeback_assets.ecosystems.base import SourceError
from chargeback_assets.engine.models import SYSTEM_IDENTITY_TYPE, UNALLOCATED, Identity
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.suspension import gather_failed, gather_succeeded
from chargeback_assets.storage.database import Transaction
from chargeback_assets.storage.inventory import (
    EntityKind,
    active_ids,
    mark_deleted,
    upsert_identities,
    upsert_resources,
)
from chargeback_assets.storage.pipeline import GatherCounter, get_counter, set_counter, update_state


@dataclass(slots=True)
class InventorySummary:
    resources: int = 0
    identities: int = 0
    complete: bool = True
    errors: list[str] = field(default_factory=list)
    deleted_resources: list[str] = field(default_factory=list)
    deleted_identities: list[str] = field(default_factory=list)


def unallocated_identity(ecosystem: str, tenant_id: str) -> Identity:
    return Identity(ecosystem, tenant_id, UNALLOCATED, SYSTEM_IDENTITY_TYPE, "Unallocated Costs")


@collector_paused()
def gather_inventory(scope: TenantScope, days: Sequence[date]) -> InventorySummary:
    now = datetime.now(UTC)
    try:
        gathered = scope.runtime.inventory.gather()
    except SourceError as exc:
        raise gather_failed(scope, "inventory", days, exc) from exc
    if not gathered.observed_types:
        cause = "; ".join(gathered.errors) or "nothing could be gathered"
        raise gather_failed(scope, "inventory", days, cause)
    identities = [*gathered.identities, unallocated_identity(scope.ecosystem, scope.tenant_id)]
    summary = InventorySummary(
        resources=len(gathered.resources),
        identities=len(gathered.identities),
        complete=gathered.complete,
        errors=list(gathered.errors),
    )
    with scope.db.transaction() as tx:
        upsert_resources(tx, scope.ecosystem, scope.tenant_id, gathered.resources, now)
        upsert_identities(tx, scope.ecosystem, scope.tenant_id, identities, now)
        for resource_type in sorted(gathered.observed_types - {"identities"}):
            seen = {r.resource_id for r in gathered.resources if r.resource_type == resource_type}
            summary.deleted_resources += _deletion_scan(
                tx, scope, "resource", f"resources:{resource_type}", seen, now, resource_type
            )
        if gathered.complete and "identities" in gathered.observed_types:
            seen = {i.identity_id for i in gathered.identities}
            summary.deleted_identities = _deletion_scan(tx, scope, "identity", "identities", seen, now, None)
        gather_succeeded(tx, scope, "inventory")
        for day in days:
            update_state(
                tx,
                scope.ecosystem,
                scope.tenant_id,
                day,
                resources_gathered=gathered.complete,
                inventory_errors=tuple(gathered.errors),
            )
    return summary


def _deletion_scan(
    tx: Transaction,
    scope: TenantScope,
    kind: EntityKind,
    scan_key: str,
    seen: Iterable[str],
    now: datetime,
    of_type: str | None,
) -> list[str]:
    seen = set(seen)
    active = active_ids(tx, scope.ecosystem, scope.tenant_id, kind, now, of_type, include_system=False)
    counter = get_counter(tx, scope.ecosystem, scope.tenant_id, scan_key)
    if seen or not active:
        set_counter(
            tx, scope.ecosystem, scope.tenant_id, scan_key, GatherCounter(0, counter.consecutive_failures)
        )
        return mark_deleted(tx, scope.ecosystem, scope.tenant_id, kind, sorted(active - seen), now)
    empty = counter.consecutive_empty + 1
    threshold = scope.tenant.zero_gather_deletion_threshold
    if threshold == -1 or empty < threshold:
        set_counter(
            tx, scope.ecosystem, scope.tenant_id, scan_key, GatherCounter(empty, counter.consecutive_failures)
        )
        return []
    set_counter(
        tx, scope.ecosystem, scope.tenant_id, scan_key, GatherCounter(0, counter.consecutive_failures)
    )
    return mark_deleted(tx, scope.ecosystem, scope.tenant_id, kind, sorted(active), now)
