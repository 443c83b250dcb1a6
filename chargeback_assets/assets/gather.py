"""Gather: billing lines from the cost source; resources and identities from the inventory APIs."""

import dagster as dg

from chargeback_assets.assets.runs import PartitionMetadata, money, tenant_work
from chargeback_assets.constants import GATHER
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.inventory import gather_inventory
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
    ) -> dg.MaterializeResult:
        report = PartitionMetadata(context, partitions, chargeback)
        for scope, wanted in tenant_work(context, partitions, chargeback):
            for day in gather_billing(scope, wanted):
                report.record(
                    scope.tenant.name,
                    day.day,
                    {
                        "dagster/row_count": day.lines,
                        **money("billed", day.billed, day.currency),
                        "currency": day.currency,
                        "malformed_lines": day.malformed,
                        "fingerprint": day.fingerprint,
                    },
                )
        report.attach()
        return dg.MaterializeResult()

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
    def inventory(context: dg.AssetExecutionContext, chargeback: ChargebackResource):
        reports = {
            kind: PartitionMetadata(context, partitions, chargeback, asset_key=asset)
            for kind, asset in (("resource", "resources"), ("identity", "identities"))
        }
        for scope, wanted in tenant_work(context, partitions, chargeback):
            summary = gather_inventory(scope, wanted)
            if not summary.complete:
                context.log.warning(
                    f"{scope.tenant.name}: incomplete inventory, no deletions: {summary.errors}"
                )
            for day in wanted:
                for kind, report in reports.items():
                    alive, deleted = count_for_day(scope.db, scope.ecosystem, scope.tenant_id, kind, day)
                    report.record(
                        scope.tenant.name,
                        day,
                        {
                            "dagster/row_count": alive,
                            "deleted_during_day": deleted,
                            "gather_complete": summary.complete,
                        },
                    )
        for report in reports.values():
            report.attach()
        yield dg.MaterializeResult(asset_key="resources")
        yield dg.MaterializeResult(asset_key="identities")

    return [billing_lines, inventory]
