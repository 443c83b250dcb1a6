"""Resolve: usage metrics per (resource, principal, metric) and the identities each line may be charged to."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from chargeback_assets.assets.runs import TenantWork
from chargeback_assets.constants import KEEP_STORED_USAGE, RESOLVE, USAGE_TAG
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.usage import fetch_usage


def build_resolve_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="usage_metrics",
        group_name=RESOLVE,
        partitions_def=partitions,
        deps=["billing_lines"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"prometheus", "sqlite"},
        description="Each principal's usage of each resource for the day, summed over half-open "
        "[day, day+1) range queries. Metrics still failing when the run's retry budget runs out fall back "
        "visibly (metrics_fetch_failed); a permanent error (auth, refused, bad query) fails the partition. "
        "A run for a revised bill keeps a day's stored usage when it answers exactly the queries the new "
        "bill needs (usage_source: stored).",
    )
    def usage_metrics(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)
        keep_stored = context.run.tags.get(USAGE_TAG) == KEEP_STORED_USAGE

        def fetch(scope: TenantScope, wanted: list[date]) -> None:
            for day in fetch_usage(scope, wanted, keep_stored):
                if day.kept:
                    context.log.info(
                        f"{scope.tenant.name} {day.day}: usage kept from its last complete fetch, which "
                        "asked the same queries the revised bill needs"
                    )
                if day.failures:
                    context.log.warning(
                        f"{scope.tenant.name} {day.day}: metrics unavailable after retries for "
                        f"{sorted(day.failures)}; those lines fall back to non-usage tiers"
                    )
                work.record(
                    scope.tenant.name,
                    day.day,
                    {
                        "dagster/row_count": day.records,
                        "resources_with_usage": day.resources,
                        "metrics_fetch_failures": len(day.failures),
                        "usage_source": "stored" if day.kept else "fetched",
                    },
                )

        work.run(fetch)
        yield from work.results()

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
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)

        def resolve(scope: TenantScope, wanted: list[date]) -> None:
            for day in wanted:
                resolved = resolve_day(scope, day)
                work.record(
                    scope.tenant.name,
                    day,
                    {
                        "dagster/row_count": resolved.resolved,
                        "lines_with_identities": resolved.with_identities,
                        "lines_without_handler": resolved.unhandled,
                    },
                )

        work.run(resolve)
        yield from work.results()

    return [usage_metrics, identity_resolutions]
