"""Allocate: chargeback facts that sum exactly to the bill, line by line."""

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg

from chargeback_assets.assets.runs import markdown_table, money, tenant_work
from chargeback_assets.constants import ALLOCATE
from chargeback_assets.engine.money import ZERO
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.chargeback import calculate_day
from chargeback_assets.stages.retention import apply_retention


def build_allocate_assets(
    partitions: dg.MultiPartitionsDefinition, allocation_retries: int
) -> list[dg.AssetsDefinition]:
    """`allocation_retries`: in-run retries of a failing allocation; each one counts an attempt, and a line
    that reaches its tenant's `allocation_retry_limit` is booked to UNALLOCATED instead of failing again."""

    @dg.asset(
        name="chargeback_facts",
        group_name=ALLOCATE,
        partitions_def=partitions,
        deps=["identity_resolutions"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=allocation_retries),
        kinds={"python", "sqlite"},
        description="Allocated chargeback rows (dimension + fact) per identity, resource, product and cost "
        "type. Every billing line's rows sum exactly to its cost; see the reconciliation check.",
    )
    def chargeback_facts(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> dg.MaterializeResult:
        days = []
        today = datetime.now(UTC).date()
        for scope, wanted in tenant_work(context, partitions, chargeback):
            days += [(scope.tenant.name, calculate_day(scope, day, context.run.run_id)) for day in wanted]
            horizon, removed = apply_retention(scope, today)
            if removed:
                context.log.info(
                    f"{scope.tenant.name}: retention removed {removed} rows of days before {horizon}"
                )
        unknown = sorted({pt for _, d in days for pt in d.unknown_product_types})
        if unknown:
            context.log.warning(f"no handler for product types {unknown}: charged by the fallback allocator")
        by_identity: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for _, day in days:
            for identity_id, amount in day.by_identity.items():
                by_identity[identity_id] += amount
        top = sorted(by_identity.items(), key=lambda item: (-item[1], item[0]))[:10]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(d.rows for _, d in days),
                "rows_written": sum(d.rows for _, d in days),
                "rows_written_by_tenant": dg.MetadataValue.json(
                    {
                        tenant: sum(d.rows for t, d in days if t == tenant)
                        for tenant in sorted({t for t, _ in days})
                    }
                ),
                "billed_total": money(sum((d.billed for _, d in days), ZERO)),
                "allocated_total": money(sum((d.allocated for _, d in days), ZERO)),
                "unallocated_total": money(sum((d.unallocated for _, d in days), ZERO)),
                "lines_failed_after_retries": sum(d.failed_lines for _, d in days),
                "top_identities": markdown_table(["identity", "amount"], [[i, a] for i, a in top]),
            }
        )

    return [chargeback_facts]
