"""Allocate: chargeback facts that sum exactly to the bill, line by line."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg

from chargeback_assets.assets.runs import TenantWork, identity_costs, money
from chargeback_assets.constants import ALLOCATE
from chargeback_assets.partitions import DATE, partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.chargeback import calculate_day
from chargeback_assets.stages.retention import Retention, apply_retention
from chargeback_assets.stages.scope import TenantScope, describe_days

TOP_IDENTITIES = 10

CHARGEBACK_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("timestamp", "datetime", description="Start of the billed day, UTC"),
        dg.TableColumn("env_id", "string", description="Environment of the resource ('' for org-level)"),
        dg.TableColumn("resource_id", "string", description="The billed resource, if any"),
        dg.TableColumn("product_category", "string"),
        dg.TableColumn("product_type", "string", description="e.g. KAFKA_NUM_CKUS, CONNECT_CAPACITY"),
        dg.TableColumn("identity_id", "string", description="Who pays: a principal, team or stand-in"),
        dg.TableColumn("cost_type", "string", description="usage or shared"),
        dg.TableColumn("allocation_method", "string", description="The allocation tier that charged it"),
        dg.TableColumn("allocation_detail", "string", description="Why that tier applied"),
        dg.TableColumn("amount", "decimal", description="Exact, 0.0001 of the billing currency"),
    ]
)


def build_allocate_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """A line whose allocation raises is tried again within the step, each failure counted in storage, and
    booked to UNALLOCATED once it reaches its tenant's `allocation_retry_limit`: one run settles every day
    it covers (no Dagster RetryPolicy: it would turn Terminate into a retry)."""

    @dg.asset(
        name="chargeback_facts",
        group_name=ALLOCATE,
        partitions_def=partitions,
        deps=["identity_resolutions"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "sqlite"},
        metadata={"dagster/column_schema": CHARGEBACK_COLUMNS},
        description="Allocated chargeback rows (dimension + fact) per identity, resource, product and cost "
        "type. Every billing line's rows sum exactly to its cost; see the reconciliation check.",
    )
    def chargeback_facts(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        today = datetime.now(UTC).date()
        work = TenantWork(context, partitions, chargeback)
        unknown: set[str] = set()
        retired: dict[str, Retention] = {}

        def allocate(scope: TenantScope, wanted: list[date]) -> None:
            for day in wanted:
                result = calculate_day(scope, day, context.run.run_id)
                unknown.update(result.unknown_product_types)
                work.record(
                    scope.tenant.name,
                    day,
                    {
                        "dagster/row_count": result.rows,
                        **money("billed", result.billed, result.currency),
                        **money("allocated", result.allocated, result.currency),
                        **money("unallocated", result.unallocated, result.currency),
                        **money("unattributed", result.unattributed, result.currency),
                        "currency": result.currency,
                        "lines_failed_after_retries": result.failed_lines,
                        "top_identities": identity_costs(result.top_identities(TOP_IDENTITIES)),
                    },
                )
            retention = apply_retention(scope, today, wanted)
            retired[scope.tenant.name] = retention
            if retention.removed or retention.kept:
                context.log.info(
                    f"{scope.tenant.name}: retention (days before {retention.horizon}) removed "
                    f"{describe_days(retention.removed)}, {retention.rows} rows; kept the run's own "
                    f"{describe_days(retention.kept)}"
                )

        work.run(allocate)
        if unknown:
            context.log.warning(
                f"no handler for product types {sorted(unknown)}: charged by the fallback allocator"
            )
        yield from _removed_partitions(partitions, retired, context.run.run_id)
        yield from work.results()

    return [chargeback_facts]


def _removed_partitions(
    partitions: dg.MultiPartitionsDefinition, retired: dict[str, Retention], run_id: str
) -> Iterator[dg.AssetObservation]:
    """An observation on each partition whose day retention removed, with what it removed of that day.

    What a run removed is told on the removed partitions themselves, not on the run's own (DESIGN 3.10).
    """
    first = partitions.get_partitions_def_for_dimension(DATE).start.date()
    for tenant, retention in retired.items():
        for day, rows in sorted(retention.deleted.by_day.items()):
            if day < first:
                continue  # not a partition (before every tenant's start_date)
            yield dg.AssetObservation(
                asset_key="chargeback_facts",
                partition=str(partition_key(day, tenant)),
                metadata={
                    "retention": f"removed by run {run_id}: the day is older than the horizon "
                    f"{retention.horizon} (retention_days)",
                    "rows_removed": dg.MetadataValue.json(rows),
                },
            )
