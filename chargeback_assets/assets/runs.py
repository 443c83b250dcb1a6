"""What every asset does first and last: turn the run's partition keys into work per tenant, in order, and
report what each (date, tenant) partition holds.

A run may cover many days and, when Dagster splits a backfill by date, several tenants. Dagster copies a
`MaterializeResult`'s metadata to every partition of a ranged run, so an asset that returned run totals
would show them on each partition. Every figure is therefore recorded per partition with
`context.add_asset_metadata(..., partition_key=k)`, and the result itself carries none (DESIGN §3.10).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg

from chargeback_assets.partitions import days_by_tenant, partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.scope import TenantScope, describe_days


def tenant_work(
    context: dg.AssetExecutionContext,
    partitions: dg.MultiPartitionsDefinition,
    chargeback: ChargebackResource,
) -> Iterator[tuple[TenantScope, list[date]]]:
    """Each tenant of the run with its days on or after the tenant's start date, within an open scope.

    Nothing is computed before the run holds every one of its tenants (stages/lanes.py).
    """
    by_tenant = days_by_tenant(partitions, context.partition_keys)
    chargeback.hold_tenants(by_tenant, context.log.info)
    for tenant_name, days in by_tenant.items():
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


class PartitionMetadata:
    """Collects each (date, tenant) partition's metadata for one asset and attaches it to that partition.

    A partition of the run that nothing was recorded for (a day before its tenant's start_date) says why
    instead of showing nothing.
    """

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        partitions: dg.MultiPartitionsDefinition,
        chargeback: ChargebackResource,
        asset_key: str | None = None,
    ) -> None:
        self._context = context
        self._partitions = partitions
        self._chargeback = chargeback
        self._asset_key = asset_key
        self._by_key: dict[str, Mapping[str, Any]] = {}

    def record(self, tenant: str, day: date, metadata: Mapping[str, Any]) -> None:
        self._by_key[str(partition_key(day, tenant))] = metadata

    def attach(self) -> None:
        for tenant, days in days_by_tenant(self._partitions, self._context.partition_keys).items():
            start = self._chargeback.tenant(tenant).start_date
            for day in days:
                key = str(partition_key(day, tenant))
                metadata = self._by_key.get(key)
                if metadata is None:
                    metadata = {"note": f"nothing to do: {day} is before {tenant}'s start_date {start}"}
                self._context.add_asset_metadata(metadata, asset_key=self._asset_key, partition_key=key)


def money(name: str, amount: Decimal, currency: str) -> dict[str, dg.MetadataValue]:
    """An amount as a float the Plots tab can draw, and beside it the exact decimal with its currency."""
    return {
        name: dg.MetadataValue.float(float(amount)),
        f"{name}_exact": dg.MetadataValue.text(f"{amount} {currency}"),
    }


IDENTITY_COSTS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("identity_id", "string", description="Who is charged"),
        dg.TableColumn("amount", "decimal", description="Exact amount in the day's billing currency"),
    ]
)


def identity_costs(costs: Sequence[tuple[str, Decimal]]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"identity_id": who, "amount": str(amount)}) for who, amount in costs],
        schema=IDENTITY_COSTS_SCHEMA,
    )
