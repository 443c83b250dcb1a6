"""What every asset does first and last: turn the run's partition keys into work per tenant, in order, keep
one tenant's failure from the others, and report what each (date, tenant) partition holds.

A run may cover many days and, when Dagster splits a backfill by date, several tenants. Dagster copies a
`MaterializeResult`'s metadata to every partition of a ranged run, so an asset that returned run totals
would show them on each partition. Every figure is therefore recorded per partition with
`context.add_asset_metadata(..., partition_key=k)`, and the result itself carries none (DESIGN §3.10).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg

from chargeback_assets.constants import FAILED_TENANTS
from chargeback_assets.engine.models import is_settled
from chargeback_assets.partitions import days_by_tenant, partition_key
from chargeback_assets.redaction import scrub, scrub_data
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.bulk import return_free_memory
from chargeback_assets.stages.scope import TenantScope, describe_days


class TenantWork:
    """One step's work over the run's tenants: leases first, then each tenant on its own.

    Dagster may put several tenants in one run (a backfill split by date, "Materialize all"). One tenant's
    failure must not take the others' partitions with it, so `run` catches it, logs it and goes on with the
    next tenant. Every figure is recorded per (date, tenant) partition. When every tenant succeeded the step
    attaches them to the partitions and returns a plain result; when one failed, only the partitions whose
    work was committed are materialized, explicitly, and the step then fails, naming each failed tenant and
    its error in the `failed_tenants` metadata. Dagster then skips the run's later steps for every tenant;
    the continuation sensor (sensors.py) relaunches the other tenants' remaining assets in runs of their own.
    """

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        partitions: dg.MultiPartitionsDefinition,
        chargeback: ChargebackResource,
        asset_keys: Sequence[str] = (),
    ) -> None:
        self._context = context
        self._partitions = partitions
        self._chargeback = chargeback
        self._asset_keys = tuple(asset_keys)
        self._by_tenant = days_by_tenant(partitions, context.partition_keys)
        self._metadata: dict[tuple[str | None, str], Mapping[str, Any]] = {}
        self._failures: dict[str, str] = {}

    def run(self, work: Callable[[TenantScope, list[date]], None]) -> None:
        """`work` each tenant's days on or after its start date, within an open scope, failures kept apart.

        Nothing is computed before the run holds every one of its tenants (stages/lanes.py).
        """
        context = self._context
        self._chargeback.hold_tenants(self._by_tenant, context.log.info)
        assets = ", ".join(sorted(key.to_user_string() for key in context.selected_asset_keys))
        for tenant_name, days in self._by_tenant.items():
            try:
                start = self._chargeback.tenant(tenant_name).start_date
                wanted = [day for day in days if day >= start]
                if len(wanted) < len(days):
                    context.log.info(
                        f"{tenant_name}: skipping {len(days) - len(wanted)} day(s) before start_date {start}"
                    )
                if not wanted:
                    continue
                context.log.info(f"{assets}: {tenant_name}, {describe_days(wanted)}")
                with self._chargeback.scope(tenant_name) as scope:
                    work(scope, wanted)
            except Exception as exc:
                # Any exception, not only ours, may quote a secret: what Dagster stores is scrubbed here.
                self._failures[tenant_name] = error = scrub(str(exc))
                context.log.error(f"{assets}: {tenant_name} failed; other tenants go on: {error}")
            finally:
                return_free_memory()

    def record(
        self, tenant: str, day: date, metadata: Mapping[str, Any], asset_key: str | None = None
    ) -> None:
        """Attach the partition's figures and whether its day is settled (past the tenant's `settle_days`)."""
        settled = is_settled(day, datetime.now(UTC).date(), self._chargeback.tenant(tenant).settle_days)
        self._metadata[(asset_key, str(partition_key(day, tenant)))] = scrubbed_metadata(
            {**metadata, "settled": settled}
        )

    def results(self) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        """The step's outcome: see the class docstring."""
        keys: Sequence[str | None] = self._asset_keys or (None,)
        if not self._failures:
            for asset_key in keys:
                for partition, metadata in self._partition_metadata(asset_key):
                    self._context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=partition)
                yield dg.MaterializeResult(asset_key=asset_key)
            return
        for asset_key in keys:
            target = asset_key or self._context.asset_key
            for partition, metadata in self._partition_metadata(asset_key):
                yield dg.AssetMaterialization(asset_key=target, partition=partition, metadata=metadata)
        failed = "\n".join(f"{tenant}: {error}" for tenant, error in sorted(self._failures.items()))
        raise dg.Failure(
            description=f"{len(self._failures)} tenant(s) failed; other partitions were kept:\n{failed}",
            metadata={FAILED_TENANTS: dg.MetadataValue.json(dict(sorted(self._failures.items())))},
        )

    def _partition_metadata(self, asset_key: str | None) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each partition of the run with what was recorded for it; a day before its tenant's start_date
        says so instead of showing nothing. A failed tenant's partitions appear only where work was
        committed and recorded before the failure."""
        for tenant, days in self._by_tenant.items():
            start = None if tenant in self._failures else self._chargeback.tenant(tenant).start_date
            for day in days:
                partition = str(partition_key(day, tenant))
                metadata = self._metadata.get((asset_key, partition))
                if metadata is None and start is not None and day < start:
                    metadata = {"note": f"nothing to do: {day} is before {tenant}'s start_date {start}"}
                if metadata is not None or tenant not in self._failures:
                    yield partition, metadata or {}


def scrubbed_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata without any secret in its text (redaction.py): what a partition or check shows is stored in
    Dagster's event log and shown in the UI, and some of it quotes errors or a source's answers."""
    return {key: _scrubbed(value) for key, value in metadata.items()}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, dg.TextMetadataValue):
        return dg.MetadataValue.text(scrub(value.text))
    if isinstance(value, dg.MarkdownMetadataValue):
        return dg.MetadataValue.md(scrub(value.md_str))
    if isinstance(value, dg.JsonMetadataValue):
        return dg.MetadataValue.json(scrub_data(value.data))
    return scrub_data(value)


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
