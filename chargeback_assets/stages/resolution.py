"""Identity resolution: for each billing line of a day, who it can be charged to, by scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from chargeback_assets.engine.calculate import line_window
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import IdentityResolution, Window
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.pipeline import get_state, update_state
from chargeback_assets.storage.resolutions import replace_resolutions_day
from chargeback_assets.storage.usage import usage_for_day


@dataclass(frozen=True, slots=True)
class ResolutionDay:
    day: date
    lines: int
    resolved: int
    unhandled: int
    with_identities: int


@collector_paused()
def resolve_day(scope: TenantScope, day: date) -> ResolutionDay:
    built_from = get_state(scope.db, scope.ecosystem, scope.tenant_id, day).billing_fingerprint
    lines = billing_for_day(scope.db, scope.ecosystem, scope.tenant_id, day)
    usage = usage_for_day(scope.db, scope.ecosystem, scope.tenant_id, day)
    views = scope.inventory_views
    resolutions: dict[str, IdentityResolution] = {}
    # A handler resolves a resource, not a line (see `ProductHandler.resolve`): a cluster's dozen lines of a
    # day share one resolution, worked out once and stored once.
    shared: dict[tuple[int, str, Window], IdentityResolution] = {}
    for line in lines:
        handler = scope.runtime.handler_for(line.product_type)
        if handler is None:
            continue
        window = line_window(line)
        key = (id(handler), line.resource_id, window)
        resolution = shared.get(key)
        if resolution is None:
            view = views.for_window(window)
            resolution = shared[key] = handler.resolve(line, view, usage.get(line.resource_id))
        resolutions[line_id(line)] = resolution
    with scope.db.transaction() as tx:
        replace_resolutions_day(tx, scope.ecosystem, scope.tenant_id, day, resolutions)
        update_state(tx, scope.ecosystem, scope.tenant_id, day, resolution_fingerprint=built_from)
    return ResolutionDay(
        day=day,
        lines=len(lines),
        resolved=len(resolutions),
        unhandled=len(lines) - len(resolutions),
        with_identities=sum(1 for r in resolutions.values() if r.merged_active),
    )
