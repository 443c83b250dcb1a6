"""Issue 2: resolve, allocate and write one synthetic large tenant-day (`bench.synthetic`).

Part (a) is what the pipeline does between stored inputs and rows: an `InventoryView` for the day, each
line resolved by its Confluent Cloud handler, the tenant-period scope added, and `allocate_day` over the
`LinePlan`s. Part (b) writes the rows with `replace_chargeback_day` in one transaction into a fresh SQLite
file (opening and migrating the file is not timed). Inputs are built once, outside the timing.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench.harness import median, thousands, timed
from bench.synthetic import ECOSYSTEM, TENANT_ID, TenantDay, tenant_day
from chargeback_assets.ecosystems.confluent_cloud.chains import fallback_allocator
from chargeback_assets.ecosystems.confluent_cloud.handlers import (
    claims_by_product_type,
    confluent_cloud_handlers,
)
from chargeback_assets.engine.calculate import (
    DayAllocation,
    LinePlan,
    allocate_day,
    line_window,
    with_tenant_period,
)
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import IdentityResolution
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.storage.chargeback import replace_chargeback_day
from chargeback_assets.storage.database import ChargebackDatabase

RUNS = 5
DAY = date(2026, 3, 14)
RETRY_LIMIT = 3


@collector_paused()
def resolve_and_allocate(day: TenantDay) -> DayAllocation:
    """As `stages.chargeback.calculate_day` runs it: with the garbage collector paused."""
    claims = claims_by_product_type(confluent_cloud_handlers())
    view = InventoryView.build(day.window, day.resources, day.identities)
    tenant_period = view.tenant_period()
    plans = []
    for line in day.lines:
        handler = claims.get(line.product_type)
        usage = day.usage.get(line.resource_id)
        if handler is None:
            allocator, resolution = fallback_allocator(), IdentityResolution()
        else:
            allocator, resolution = handler.allocator(line.product_type), handler.resolve(line, view, usage)
        plans.append(
            LinePlan(
                line=line,
                allocator=allocator,
                resolution=with_tenant_period(resolution, tenant_period),
                window=line_window(line),
                resource=view.resource(line.resource_id),
                usage=usage,
            )
        )
    outcome = allocate_day(plans, prior_attempts={}, retry_limit=RETRY_LIMIT)
    if outcome.exhausted:
        raise AssertionError(f"synthetic lines failed to allocate: {outcome.exhausted[:3]}")
    return outcome


@collector_paused()
def write(db: ChargebackDatabase, day: TenantDay, outcome: DayAllocation) -> int:
    with db.transaction() as tx:
        return replace_chargeback_day(tx, ECOSYSTEM, TENANT_ID, day.day, outcome.rows)


def run() -> dict[str, Any]:
    day = tenant_day(DAY)
    allocate_s, write_s, total_s = [], [], []
    rows = facts = 0
    with tempfile.TemporaryDirectory(prefix="bench-allocation-") as workdir:
        for attempt in range(RUNS):
            db = ChargebackDatabase.open(Path(workdir) / f"run{attempt}.db")
            try:
                seconds_a, outcome = timed(lambda: resolve_and_allocate(day))
                seconds_b, facts = timed(lambda db=db, outcome=outcome: write(db, day, outcome))
            finally:
                db.close()
            rows = len(outcome.rows)
            allocate_s.append(seconds_a)
            write_s.append(seconds_b)
            total_s.append(seconds_a + seconds_b)
    total = median(total_s)
    return {
        "title": "allocation+write",
        "median_s": total,
        "runs": RUNS,
        "figures": [
            f"{thousands(rows)} rows",
            f"{thousands(rows / total)} rows/s",
            f"{thousands(len(day.lines) / total)} lines/s",
        ],
        "target_s": 0.5,
        "target_rss_mb": 300,
        "details": [
            f"(a) resolution+allocation median {median(allocate_s):.3f} s; "
            f"(b) write median {median(write_s):.3f} s",
            f"{len(day.lines)} billing lines, {len(day.resources)} resources, "
            f"{len(day.identities)} identities, {thousands(rows)} rows -> {thousands(facts)} facts written",
        ],
    }
