"""Gather: billing lines from the cost source; resources and identities from the inventory APIs."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from chargeback_assets.assets.runs import TenantWork, money
from chargeback_assets.constants import GATHER
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.inventory import count_for_day


def build_gather_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="billing_lines",
        group_name=GATHER,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "sqlite"},
        description="The tenant's billing lines for the day (Billing API or cost model), replaced "
        "atomically, with a fingerprint the billing-change sensor compares against.",
    )
    def billing_lines(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)

        def gather(scope: TenantScope, wanted: list[date]) -> None:
            for day in gather_billing(scope, wanted):
                work.record(
                    scope.tenant.name,
                    day.day,
                    {
                        "dagster/row_count": day.lines,
                        **money("billed", day.billed, day.currency),
                        "currency": day.currency,
                        "malformed_lines": day.malformed,
                        "duplicate_lines": day.duplicates,
                        "stray_lines": day.strays,
                        "fingerprint": day.fingerprint,
                    },
                )

        work.run(gather)
        yield from work.results()

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "resources",
                group_name=GATHER,
                partitions_def=partitions,
                kinds={"python", "sqlite"},
                description="The tenant's infrastructure (clusters, connectors, pools, ...) with lifecycle; "
                "deletion detection guarded by the zero-gather threshold.",
            ),
            dg.AssetSpec(
                "identities",
                group_name=GATHER,
                partitions_def=partitions,
                kinds={"python", "sqlite"},
                description="Service accounts, users, API keys and identity pools with lifecycle; "
                "system identities such as UNALLOCATED are never deleted.",
            ),
        ],
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def inventory(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        assets = {"resource": "resources", "identity": "identities"}
        work = TenantWork(context, partitions, chargeback, asset_keys=list(assets.values()))

        def gather(scope: TenantScope, wanted: list[date]) -> None:
            summary = gather_inventory(scope, wanted)
            if not summary.complete:
                context.log.warning(
                    f"{scope.tenant.name}: incomplete inventory, no deletions: {summary.errors}"
                )
            for day in wanted:
                for kind, asset in assets.items():
                    alive, deleted = count_for_day(scope.db, scope.ecosystem, scope.tenant_id, kind, day)
                    work.record(
                        scope.tenant.name,
                        day,
                        {
                            "dagster/row_count": alive,
                            "deleted_during_day": deleted,
                            "gather_complete": summary.complete,
                        },
                        asset_key=asset,
                    )

        work.run(gather)
        yield from work.results()

    return [billing_lines, inventory]
