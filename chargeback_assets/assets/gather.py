"""Gather: billing lines from the cost source; resources and identities from the inventory APIs."""

import dagster as dg

from chargeback_assets.assets.runs import markdown_table, money, tenant_work
from chargeback_assets.constants import GATHER, SOURCE_RETRY
from chargeback_assets.engine.money import ZERO
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.inventory import gather_inventory


def build_gather_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="billing_lines",
        group_name=GATHER,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SOURCE_RETRY,
        kinds={"python", "sqlite"},
        description="The tenant's billing lines for the day (Billing API or cost model), replaced "
        "atomically, with a fingerprint the billing-change sensor compares against.",
    )
    def billing_lines(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> dg.MaterializeResult:
        days = []
        for scope, wanted in tenant_work(context, partitions, chargeback):
            days += [(scope.tenant.name, result) for result in gather_billing(scope, wanted)]
        billed = sum((r.billed for _, r in days), ZERO)
        metadata: dict[str, object] = {
            "dagster/row_count": sum(r.lines for _, r in days),
            "billed_total": money(billed),
            "malformed_lines": sum(r.malformed for _, r in days),
            "days": markdown_table(
                ["tenant", "date", "lines", "billed", "fingerprint", "malformed"],
                [[t, r.day, r.lines, r.billed, r.fingerprint[:12], r.malformed] for t, r in days],
            ),
        }
        if len(days) == 1:
            metadata["fingerprint"] = days[0][1].fingerprint
        return dg.MaterializeResult(metadata=metadata)

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
        retry_policy=SOURCE_RETRY,
    )
    def inventory(context: dg.AssetExecutionContext, chargeback: ChargebackResource):
        summaries = []
        for scope, wanted in tenant_work(context, partitions, chargeback):
            summary = gather_inventory(scope, wanted)
            if not summary.complete:
                context.log.warning(
                    f"{scope.tenant.name}: incomplete inventory, no deletions: {summary.errors}"
                )
            summaries.append(summary)
        complete = all(s.complete for s in summaries)
        yield dg.MaterializeResult(
            asset_key="resources",
            metadata={
                "dagster/row_count": sum(s.resources for s in summaries),
                "deleted": len([r for s in summaries for r in s.deleted_resources]),
                "gather_complete": complete,
            },
        )
        yield dg.MaterializeResult(
            asset_key="identities",
            metadata={
                "dagster/row_count": sum(s.identities for s in summaries),
                "deleted": len([i for s in summaries for i in s.deleted_identities]),
                "gather_complete": complete,
            },
        )

    return [billing_lines, inventory]
