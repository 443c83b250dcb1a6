"""What per-partition metadata costs Dagster: one 90-day run of one tenant, with and without it.

Every asset attaches its figures to each partition with `context.add_asset_metadata(..., partition_key=k)`
(assets/runs.py). Dagster re-expands the run's partition range on every call, so the cost could grow with
the square of the run's length; this measures it on a trivial asset, where nothing else takes time. (No
`from __future__ import annotations` here: Dagster checks the `context` annotation at definition time.)
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from bench.harness import median, timed

DAYS = 90
RUNS = 5
TENANTS = ["acme-prod", "acme-staging"]
METADATA = {
    "dagster/row_count": 16_000,
    "billed": 9383.8017,
    "billed_exact": "9383.8017 USD",
    "allocated": 9383.8017,
    "allocated_exact": "9383.8017 USD",
    "currency": "USD",
    "lines_failed_after_retries": 0,
}


def _job(per_partition: bool, partitions: dg.MultiPartitionsDefinition) -> dg.JobDefinition:
    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def facts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        if not per_partition:
            return dg.MaterializeResult(metadata=METADATA)
        for key in context.partition_keys:
            context.add_asset_metadata(METADATA, partition_key=key)
        return dg.MaterializeResult()

    defs = dg.Definitions(assets=[facts], executor=dg.in_process_executor)
    return defs.resolve_implicit_global_asset_job_def()


def run() -> dict[str, Any]:
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=DAYS - 1)
    partitions = dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date=first.isoformat()),
            "tenant": dg.StaticPartitionsDefinition(TENANTS),
        }
    )
    tags = {
        "dagster/asset_partition_range_start": f"{first}|{TENANTS[0]}",
        "dagster/asset_partition_range_end": f"{last}|{TENANTS[0]}",
    }
    seconds: dict[bool, list[float]] = {True: [], False: []}
    with dg.instance_for_test() as instance:
        for _ in range(RUNS):
            for per_partition in (False, True):  # alternating, so both see the same machine
                job = _job(per_partition, partitions)
                elapsed, result = timed(lambda job=job: job.execute_in_process(instance=instance, tags=tags))
                assert result.success
                seconds[per_partition].append(elapsed)
    with_metadata, without = median(seconds[True]), median(seconds[False])
    return {
        "title": f"per-partition metadata, {DAYS}-day run",
        "median_s": with_metadata,
        "runs": RUNS,
        "figures": [f"{(with_metadata - without) / DAYS * 1000:.1f} ms per partition"],
        "details": [
            f"run with add_asset_metadata per partition: median {with_metadata:.2f} s; with one "
            f"MaterializeResult for the whole run: {without:.2f} s; {DAYS} partitions, one tenant",
        ],
    }
