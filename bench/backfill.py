"""Issue 4: a 30-day backfill of the `large` sandbox organization through Dagster, then one revised day.

The backfill is `chargeback_job` executed in process as one single-run range (the tags a backfill of a
partition range puts on its run), on a fresh Dagster instance and an empty database each time. Then the
sandbox revises one day's bill; the billing-change sensor is evaluated (it must request exactly that
partition) and the requested partition is executed, with the assets the request selects (a revised bill:
billing_lines and what is built from it): the revision time is sensor tick + re-materialization.
Building the definitions and starting the sandbox are not timed. After the timing, every day is reconciled
line by line from storage (allocated == billed for each billing line), or the benchmark fails.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

from bench.event_floor import event_floor
from bench.harness import median, megabytes, timed
from bench.instance import repo_instance
from bench.sandbox import RemoteSandbox, remote_sandbox
from chargeback_assets.constants import TENANT_TAG
from chargeback_assets.definitions import CHARGEBACK_JOB, load_definitions
from chargeback_assets.partitions import partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.checks import reconcile_day

BACKFILL_RUNS = 3
REVISION_RUNS = 3
DAYS = 30
TENANT = "large"
REVISED_AGE_DAYS = 2
"""The revised day is the newest day minus this: inside every tenant's recalculation window (>= 1 day)."""
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def backfill(
    defs: dg.Definitions, instance: dg.DagsterInstance, first: date, last: date, tenant: str = TENANT
) -> str:
    """One run over `first..last` of `tenant`, tagged as a single-run backfill's run is; returns its id."""
    result = defs.resolve_job_def(CHARGEBACK_JOB).execute_in_process(
        instance=instance,
        run_config=QUIET,
        tags={
            TENANT_TAG: tenant,
            "dagster/asset_partition_range_start": partition_key(first, tenant),
            "dagster/asset_partition_range_end": partition_key(last, tenant),
        },
    )
    if not result.success:
        raise RuntimeError(f"the backfill run of {tenant}, {first}..{last}, failed")
    return result.run_id


def require_reconciled(config_path: Path, first: date, last: date, tenant: str = TENANT) -> None:
    """Every day's stored chargeback sums, line by line, exactly to its bill (read back after the timing)."""
    with ChargebackResource(config_path=str(config_path)).data(tenant) as data:
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            outcome = reconcile_day(data, day)
            if not outcome.passed or outcome.lines == 0:
                raise RuntimeError(
                    f"{day}: {outcome.lines} billing lines, allocated {outcome.allocated} of billed "
                    f"{outcome.billed}; {list(outcome.mismatches[:3])}"
                )


def revision(
    defs: dg.Definitions, instance: dg.DagsterInstance, config_path: Path, day: date
) -> tuple[float, float, str]:
    """Seconds of the sensor tick and of the re-materialization it requested (exactly `day` or fail), and
    the re-materialization's run id."""
    sensor = defs.resolve_sensor_def("billing_change_sensor")
    with dg.build_sensor_context(
        instance=instance,
        resources={"chargeback": ChargebackResource(config_path=str(config_path))},
        definitions=defs,
    ) as context:
        tick_s, result = timed(lambda: sensor(context))
    requested = [request.partition_key for request in result.run_requests or []]
    if requested != [partition_key(day, TENANT)]:
        raise RuntimeError(f"the sensor requested {requested}, expected only {partition_key(day, TENANT)}")
    request = result.run_requests[0]
    run_s, outcome = timed(
        lambda: defs.resolve_job_def(CHARGEBACK_JOB).execute_in_process(
            instance=instance,
            run_config=QUIET,
            partition_key=request.partition_key,
            tags=request.tags,
            asset_selection=request.asset_selection,
        )
    )
    if not outcome.success:
        raise RuntimeError(f"the re-materialization of {request.partition_key} failed")
    return tick_s, run_s, outcome.run_id


def one_backfill(
    sandbox: RemoteSandbox, workdir: Path, first: date, last: date, floors: bool = False
) -> dict[str, Any]:
    """One backfill and its revisions; with `floors`, also what Dagster's event log alone costs each."""
    config_path = sandbox.write_config(workdir, TENANT)
    defs = load_definitions(str(config_path))
    floor_lines = []
    with repo_instance(workdir) as instance:
        before, server_cpu = sandbox.requests(), sandbox.cpu_seconds()
        backfill_s, backfill_run = timed(lambda: backfill(defs, instance, first, last))
        backfill_requests = sandbox.requests() - before
        server_cpu = sandbox.cpu_seconds() - server_cpu
        require_reconciled(config_path, first, last)
        ticks, reruns = [], []
        day = last - timedelta(days=REVISED_AGE_DAYS)
        for attempt in range(REVISION_RUNS):
            sandbox.revise_bill(day, Decimal("1.10") + Decimal(attempt) / 100)
            tick_s, run_s, revision_run = revision(defs, instance, config_path, day)
            require_reconciled(config_path, day, day)
            ticks.append(tick_s)
            reruns.append(run_s)
        if floors:  # after every timing: its burst of writes must not slow a timed run
            floor_lines.append(
                event_floor(instance, backfill_run).describe(backfill_s, f"{DAYS}-day backfill")
            )
            floor_lines.append(event_floor(instance, revision_run).describe(run_s, "last re-materialization"))
    return {
        "backfill_s": backfill_s,
        "requests": backfill_requests,
        "server_cpu_s": server_cpu,
        "ticks": ticks,
        "reruns": reruns,
        "day": day,
        "floors": floor_lines,
    }


def run() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    last = today - timedelta(days=1)
    first = today - timedelta(days=DAYS)
    outcomes = []
    with remote_sandbox(today, DAYS + 1, first) as sandbox:
        for attempt in range(BACKFILL_RUNS):
            with tempfile.TemporaryDirectory(prefix=f"bench-backfill{attempt}-") as workdir:
                outcomes.append(
                    one_backfill(sandbox, Path(workdir), first, last, floors=attempt == BACKFILL_RUNS - 1)
                )
        server_rss = sandbox.peak_rss_kib()
    ticks = [t for o in outcomes for t in o["ticks"]]
    reruns = [r for o in outcomes for r in o["reruns"]]
    revised = [t + r for t, r in zip(ticks, reruns, strict=True)]
    return {
        "title": f"{DAYS}-day backfill (Dagster)",
        "median_s": median([o["backfill_s"] for o in outcomes]),
        "runs": BACKFILL_RUNS,
        "figures": [f"{outcomes[0]['requests']} requests"],
        "target_s": 60,
        "target_rss_mb": 500,
        "details": [
            f"revised day {outcomes[0]['day']} via billing_change_sensor: median {median(revised):.2f} s "
            f"({len(revised)} revisions; sensor tick {median(ticks):.2f} s + re-materialization "
            f"{median(reruns):.2f} s); the sensor requested exactly that partition each time",
            *outcomes[-1]["floors"],
            f"days {first}..{last}, one tenant; the sandbox server runs in its own process (CPU "
            f"{median([o['server_cpu_s'] for o in outcomes]):.1f} s per backfill, peak RSS "
            f"{megabytes(server_rss):,.0f} MB, neither counted in the figures above)",
        ],
    }
