"""One tenant at a time in every launch path, and a lost run frees its lane, under the real daemon.

DESIGN §3.7: never two runs computing one tenant and at most `max_parallel_tenants` computing at once,
whatever launched them. The UI backfills below take the two shapes Dagster gives a date × tenant range
(2 dates × 2 tenants: one run per date over both tenants; 10 × 2: one run per tenant), and a CLI
`dagster asset materialize` runs in-process beside them, outside the run queue. The verdict is read from
the run records: when each run announced its leases and when its last step ended.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest
import yaml

from chargeback_assets.config import load_config
from chargeback_assets.constants import CONTINUES_TAG, TENANT_TAG
from chargeback_assets.launcher import WorkerCheckingRunLauncher
from chargeback_assets.partitions import build_partitions
from chargeback_assets.sensors import run_partitions
from chargeback_assets.stages.lanes import HOLDING
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    open_instance,
    prepare_dagster_home,
    repo_instance_settings,
    running_dagster,
)
from chargeback_assets_tests.graph import running_graph
from chargeback_assets_tests.test_concurrency import max_overlap, wait_until_finished
from chargeback_assets_tests.webserver_queries import (
    launch_backfill,
    launch_partition,
    wait_for_backfill,
    wait_for_sensor_tick,
)

TENANTS = ("acme-prod", "acme-staging")
STEP_ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
WAIT_S = 240.0
MATERIALIZE = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "chargeback_assets.definitions"]


def configured(graph_config: Path, path: Path, *, slots: int, request_interval_s: float) -> Path:
    """The graph's config with `max_parallel_tenants` lowered and requests paced, so runs last seconds."""
    document = yaml.safe_load(graph_config.read_text())
    document["features"] = {"max_parallel_tenants": slots}
    for tenant in document["tenants"].values():
        tenant["plugin_settings"]["http"]["min_interval_seconds"] = request_interval_s
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def computing_span(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """From the moment the run held its leases to the end of its last step."""
    entries = instance.all_logs(run_id)
    held = [entry.timestamp for entry in entries if entry.user_message.startswith(HOLDING)]
    ends = [
        entry.timestamp
        for entry in entries
        if entry.dagster_event is not None and entry.dagster_event.event_type in STEP_ENDS
    ]
    assert held and ends, f"run {run_id} never held its leases or ended a step"
    return min(held), max(ends)


@pytest.mark.slow
def test_every_launch_path_computes_one_tenant_at_a_time_within_the_slots(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "dagster_home")  # the shipped queue: up to 4 runs at once
    with running_graph(tmp_path, days=14) as graph:
        config = configured(graph.config_path, tmp_path / "one-slot.yaml", slots=1, request_interval_s=0.05)
        newest = graph.newest
        square = [f"{newest - timedelta(days=d)}|{t}" for d in (1, 0) for t in TENANTS]
        long = [f"{newest - timedelta(days=d)}|{t}" for d in range(11, 1, -1) for t in TENANTS]
        cli_range = f"{newest - timedelta(days=13)}|acme-prod...{newest - timedelta(days=12)}|acme-prod"
        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            backfills = [launch_backfill(servers, PARTITIONED, keys) for keys in (square, long)]
            cli = subprocess.run(
                [*MATERIALIZE, "--select", "*", "--partition-range", cli_range],
                cwd=REPO_ROOT,
                env={**os.environ, "DAGSTER_HOME": str(home), "CHARGEBACK_CONFIG": str(config)},
                capture_output=True,
                text=True,
                timeout=WAIT_S,
            )
            assert cli.returncode == 0, cli.stderr[-3000:]
            for backfill in backfills:
                wait_for_backfill(servers, backfill)
            records = instance.get_run_records()
            spans = {r.dagster_run.run_id: computing_span(instance, r.dagster_run.run_id) for r in records}

    runs = {r.dagster_run.run_id: r for r in records}
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    partitions = build_partitions(load_config(config))
    covered = {run_id: run_partitions(r.dagster_run, partitions) for run_id, r in runs.items()}
    tenants = {run_id: set(days) for run_id, days in covered.items()}
    shapes = sorted((len(days), len(next(iter(days.values())))) for days in covered.values())
    # Dagster's split: the 2 × 2 backfill as 2 runs over both tenants, the 10 × 2 one as a run per tenant,
    # and the CLI's own run: 2 days of one tenant.
    assert shapes == [(1, 2), (1, 10), (1, 10), (2, 1), (2, 1)], shapes

    lifetimes = [(r.start_time, r.end_time) for r in records]
    assert max_overlap(lifetimes) >= 2, "the runs must have been in progress together for the test to bind"
    assert max_overlap(list(spans.values())) == 1, spans  # max_parallel_tenants: 1
    for a, b in combinations(runs, 2):
        if tenants[a] & tenants[b]:
            assert max_overlap([spans[a], spans[b]]) == 1, (tenants[a], tenants[b], spans[a], spans[b])


def continuations(instance: dg.DagsterInstance, failed: set[str]) -> list[dg.RunRecord]:
    """The continuation runs of `failed` runs, once there is one per failed run and all are over."""
    deadline = time.monotonic() + WAIT_S
    while True:
        records = [
            record
            for record in instance.get_run_records()
            if record.dagster_run.tags.get(CONTINUES_TAG) in failed
        ]
        if len(records) == len(failed) and all(record.dagster_run.is_finished for record in records):
            return records
        assert time.monotonic() < deadline, f"continuations of {failed} not over in {WAIT_S:.0f} s: {records}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_tenant_failing_in_a_run_over_both_tenants_leaves_the_other_finished(tmp_path: Path) -> None:
    """The 2 dates × 2 tenants backfill (a run per date over both tenants) with acme-prod's billing API
    down: each run fails, and the continuation sensor finishes acme-staging's days in runs of its own."""
    home = prepare_dagster_home(tmp_path / "dagster_home")
    settings = {"acme-prod": {"http": {"max_retries": 0}}}
    with running_graph(tmp_path, days=3, tenant_settings=settings) as graph:
        config = configured(graph.config_path, tmp_path / "fast.yaml", slots=4, request_interval_s=0.0)
        days = [str(graph.newest - timedelta(days=1)), str(graph.newest)]
        graph.sandboxes["acme-prod"].faults.set(
            "server_error", times=None, path_prefix="/billing/", status=500
        )
        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            wait_for_sensor_tick(servers, "tenant_continuation_sensor")
            backfill = launch_backfill(servers, PARTITIONED, [f"{d}|{t}" for d in days for t in TENANTS])
            failed = {run["runId"] for run in wait_for_backfill(servers, backfill)}
            finished = continuations(instance, failed)
            facts = instance.get_materialized_partitions(dg.AssetKey("chargeback_facts"))
            statuses = {instance.get_run_by_id(run_id).status for run_id in failed}

    assert len(failed) == 2 and statuses == {dg.DagsterRunStatus.FAILURE}
    assert {record.dagster_run.status for record in finished} == {dg.DagsterRunStatus.SUCCESS}
    assert {record.dagster_run.tags[TENANT_TAG] for record in finished} == {"acme-staging"}
    assert facts == {f"{day}|acme-staging" for day in days}, "acme-staging finished, acme-prod left failed"


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    return WorkerCheckingRunLauncher.started_pid(record.event_log_entry for record in records)


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def holds_leases(instance: dg.DagsterInstance, run_id: str) -> bool:
    return any(entry.user_message.startswith(HOLDING) for entry in instance.all_logs(run_id))


@pytest.mark.slow
def test_a_run_whose_worker_and_code_server_die_frees_its_tenant(tmp_path: Path) -> None:
    settings = copy.deepcopy(repo_instance_settings())
    settings["run_monitoring"]["poll_interval_seconds"] = 2  # shipped: 30; the mechanism is the same
    home = prepare_dagster_home(tmp_path / "dagster_home", settings)
    with running_graph(tmp_path, days=3) as graph:
        config = configured(graph.config_path, tmp_path / "paced.yaml", slots=4, request_interval_s=0.5)
        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            lost = launch_partition(servers, "acme-prod", graph.newest)
            deadline = time.monotonic() + WAIT_S
            while not holds_leases(instance, lost) and time.monotonic() < deadline:
                time.sleep(0.2)
            pid = worker_pid(instance, lost)
            assert pid is not None and holds_leases(instance, lost), "the first run never started computing"
            successor = launch_partition(servers, "acme-prod", graph.newest)
            code_server = parent_pid(pid)
            os.kill(pid, signal.SIGKILL)  # a host crash: the worker and the code server that started it
            os.kill(code_server, signal.SIGKILL)
            [first, second] = sorted(
                wait_until_finished(servers, instance, [lost, successor]),
                key=lambda record: record.dagster_run.run_id != lost,
            )
            failure = instance.all_logs(lost, of_type=dg.DagsterEventType.RUN_FAILURE)

    assert first.dagster_run.status == dg.DagsterRunStatus.FAILURE
    messages = [entry.dagster_event.message or "" for entry in failure if entry.dagster_event]
    assert any(f"run worker pid {pid} is gone" in message for message in messages), messages
    assert second.dagster_run.status == dg.DagsterRunStatus.SUCCESS
