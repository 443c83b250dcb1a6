"""Asset checks, one evaluation per run over the run's partitions.

`chargeback_reconciles` is blocking: a partition whose rows do not sum to its bill fails the run before any
emitter publishes it. The others warn: they flag data a FinOps reader should look at, without stopping it.
"""

from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg

from chargeback_assets.assets.runs import money
from chargeback_assets.engine.money import ZERO
from chargeback_assets.partitions import days_by_tenant
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.checks import (
    DayReconciliation,
    malformed_lines,
    metrics_failures,
    reconcile_day,
)
from chargeback_assets.stages.scope import TenantData

MAX_LISTED = 20


def _tenant_days(
    context: dg.AssetCheckExecutionContext,
    partitions: dg.MultiPartitionsDefinition,
    chargeback: ChargebackResource,
) -> Iterator[tuple[TenantData, list[date]]]:
    for tenant_name, days in days_by_tenant(partitions, context.partition_keys).items():
        start = chargeback.tenant(tenant_name).start_date
        with chargeback.data(tenant_name) as data:
            yield data, [day for day in days if day >= start]


def _problems_check(
    partitions: dg.MultiPartitionsDefinition,
    asset: str,
    name: str,
    description: str,
    find: Callable[[TenantData, date], list[str]],
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=name, partitions_def=partitions, description=description)
    def check(context: dg.AssetCheckExecutionContext, chargeback: ChargebackResource) -> dg.AssetCheckResult:
        problems = [
            f"{data.tenant.name} {problem}"
            for data, days in _tenant_days(context, partitions, chargeback)
            for day in days
            for problem in find(data, day)
        ]
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"count": len(problems), "problems": "\n".join(problems[:MAX_LISTED]) or "none"},
        )

    return check


def build_checks(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset="chargeback_facts",
        partitions_def=partitions,
        blocking=True,
        description="Every billing line's chargeback rows sum exactly to its total cost.",
    )
    def chargeback_reconciles(
        context: dg.AssetCheckExecutionContext, chargeback: ChargebackResource
    ) -> dg.AssetCheckResult:
        results: list[tuple[str, DayReconciliation]] = [
            (data.tenant.name, reconcile_day(data, day))
            for data, days in _tenant_days(context, partitions, chargeback)
            for day in days
        ]
        mismatches = [f"{tenant} {m}" for tenant, r in results for m in r.mismatches]
        return dg.AssetCheckResult(
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "billed": money(sum((r.billed for _, r in results), ZERO)),
                "allocated": money(sum((r.allocated for _, r in results), ZERO)),
                "mismatched_lines": len(mismatches),
                "mismatches": "\n".join(mismatches[:MAX_LISTED]) or "none",
            },
        )

    @dg.asset_check(
        asset="chargeback_facts",
        partitions_def=partitions,
        description="UNALLOCATED gets at most the tenant's unallocated_warn_fraction of a day's bill.",
    )
    def unallocated_share(
        context: dg.AssetCheckExecutionContext, chargeback: ChargebackResource
    ) -> dg.AssetCheckResult:
        over = []
        for data, days in _tenant_days(context, partitions, chargeback):
            limit = data.tenant.unallocated_warn_fraction
            for day in days:
                result = reconcile_day(data, day)
                if result.billed > 0 and result.unallocated / result.billed > limit:
                    share = (result.unallocated / result.billed * 100).quantize(ZERO)
                    over.append(f"{data.tenant.name} {day}: {share}% unallocated (limit {limit * 100}%)")
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"days_over_limit": len(over), "days": "\n".join(over[:MAX_LISTED]) or "none"},
        )

    return [
        chargeback_reconciles,
        unallocated_share,
        _problems_check(
            partitions,
            "usage_metrics",
            "metrics_fetched",
            "Usage metrics were reachable; otherwise the lines fell back to non-usage tiers.",
            metrics_failures,
        ),
        _problems_check(
            partitions,
            "billing_lines",
            "billing_well_formed",
            "No billing row was malformed (malformed rows are kept and charged, but deserve a look).",
            malformed_lines,
        ),
    ]
