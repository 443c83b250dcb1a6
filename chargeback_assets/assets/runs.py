"""What every asset does first: turn the run's partition keys into work per tenant, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg

from chargeback_assets.partitions import days_by_tenant
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.scope import TenantScope, describe_days


def tenant_work(
    context: dg.AssetExecutionContext,
    partitions: dg.MultiPartitionsDefinition,
    chargeback: ChargebackResource,
) -> Iterator[tuple[TenantScope, list[date]]]:
    """Each tenant of the run with its days on or after the tenant's start date, within an open scope."""
    for tenant_name, days in days_by_tenant(partitions, context.partition_keys).items():
        start = chargeback.tenant(tenant_name).start_date
        wanted = [day for day in days if day >= start]
        if len(wanted) < len(days):
            context.log.info(
                f"{tenant_name}: skipping {len(days) - len(wanted)} day(s) before start_date {start}"
            )
        if not wanted:
            continue
        assets = ", ".join(sorted(key.to_user_string() for key in context.selected_asset_keys))
        context.log.info(f"{assets}: {tenant_name}, {describe_days(wanted)}")
        with chargeback.scope(tenant_name) as scope:
            yield scope, wanted


def money(value: object) -> dg.MetadataValue:
    """Exact amounts as text: a float would show 0.30000000000000004 to a FinOps reader."""
    return dg.MetadataValue.text(str(value))


def markdown_table(header: list[str], rows: list[list[object]]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))
