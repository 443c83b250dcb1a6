"""Resolve: usage metrics per (resource, principal, metric) and the identities each line may be charged to."""

import dagster as dg

from chargeback_assets.assets.runs import markdown_table, tenant_work
from chargeback_assets.constants import RESOLVE, SOURCE_RETRY
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.usage import fetch_usage


def build_resolve_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="usage_metrics",
        group_name=RESOLVE,
        partitions_def=partitions,
        deps=["billing_lines"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=SOURCE_RETRY,
        kinds={"prometheus", "sqlite"},
        description="Each principal's usage of each resource for the day, summed over half-open "
        "[day, day+1) range queries. Unreachable metrics fail the partition until the last retry.",
    )
    def usage_metrics(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> dg.MaterializeResult:
        final_attempt = context.retry_number >= SOURCE_RETRY.max_retries
        days = []
        for scope, wanted in tenant_work(context, partitions, chargeback):
            days += [(scope.tenant.name, d) for d in fetch_usage(scope, wanted, final_attempt=final_attempt)]
        failures = sorted({f"{t} {d.day} {r}" for t, d in days for r in d.failures})
        if failures:
            context.log.warning(f"metrics unavailable after retries, falling back: {failures}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(d.records for _, d in days),
                "resources_with_usage": sum(d.resources for _, d in days),
                "metrics_fetch_failures": len(failures),
            }
        )

    @dg.asset(
        name="identity_resolutions",
        group_name=RESOLVE,
        partitions_def=partitions,
        deps=["billing_lines", "resources", "identities", "usage_metrics"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "sqlite"},
        description="Per billing line: the identities it can be charged to, by scope (resource_active, "
        "metrics_derived), with the usage weights its allocation chain reads.",
    )
    def identity_resolutions(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> dg.MaterializeResult:
        days = []
        for scope, wanted in tenant_work(context, partitions, chargeback):
            days += [(scope.tenant.name, resolve_day(scope, day)) for day in wanted]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(d.resolved for _, d in days),
                "lines_without_handler": sum(d.unhandled for _, d in days),
                "days": markdown_table(
                    ["tenant", "date", "lines", "resolved", "with identities", "no handler"],
                    [[t, d.day, d.lines, d.resolved, d.with_identities, d.unhandled] for t, d in days],
                ),
            }
        )

    return [usage_metrics, identity_resolutions]
