"""The run queue of .dagster_home/dagster.yaml (DESIGN.md §3.7): at most `max_parallel_tenants` runs at once,
never two runs of one tenant at once, enforced by the real dagster-daemon."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from chargeback_assets.config import FeaturesConfig, load_config
from chargeback_assets.constants import TENANT_TAG
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    DagsterServers,
    open_instance,
    prepare_dagster_home,
    repo_instance_settings,
    running_dagster,
)
from chargeback_assets_tests.graph import running_graph
from chargeback_assets_tests.webserver_queries import launch_partition

TENANTS = ("acme-dev", "acme-prod", "acme-staging")
PER_TENANT_KEYS = {TENANT_TAG, "dagster/partition/tenant"}
TEST_MAX_CONCURRENT_RUNS = 2
RUNS_TIMEOUT_S = 150.0
REQUEST_INTERVAL_S = 0.25


def run_queue_limits(runs: Mapping[str, Any]) -> tuple[int, dict[str, int]]:
    """(max_concurrent_runs, {tag key: limit per unique value}) of dagster.yaml's `concurrency.runs`."""
    per_value = {
        rule["key"]: rule["limit"]
        for rule in runs["tag_concurrency_limits"]
        if rule.get("value") == {"applyLimitPerUniqueValue": True}
    }
    return runs["max_concurrent_runs"], per_value


def test_run_queue_limit_is_the_configured_max_parallel_tenants(tmp_path: Path) -> None:
    example = load_config(REPO_ROOT / "chargeback.example.yaml", environ={"CCLOUD_API_KEY": "example-key"})
    max_runs, per_value = run_queue_limits(repo_instance_settings()["concurrency"]["runs"])
    assert max_runs == example.features.max_parallel_tenants == FeaturesConfig().max_parallel_tenants
    assert per_value == {key: 1 for key in PER_TENANT_KEYS}

    # Dagster itself reads the file that way: the queued coordinator with those limits.
    with open_instance(prepare_dagster_home(tmp_path / "home")) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert run_queue_limits(queue._asdict()) == (max_runs, per_value)


def max_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one instant; one that ends exactly when another starts does not overlap."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def three_tenant_config(graph_config: Path, path: Path) -> Path:
    """The graph's two tenants plus acme-dev, a second tenant on acme-prod's sandbox organization.

    Every tenant keeps REQUEST_INTERVAL_S between its Confluent Cloud requests (about 20 per run), so a
    run lasts seconds rather than the sandbox's sub-second, long enough to overlap any run the queue lets
    start beside it.
    """
    document = yaml.safe_load(graph_config.read_text())
    dev = copy.deepcopy(document["tenants"]["acme-prod"])
    dev["tenant_id"] = "acme-dev"
    document["tenants"]["acme-dev"] = dev
    for tenant in document["tenants"].values():
        tenant["plugin_settings"]["http"]["min_interval_seconds"] = REQUEST_INTERVAL_S
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def wait_until_finished(
    servers: DagsterServers, instance: dg.DagsterInstance, run_ids: list[str]
) -> list[dg.RunRecord]:
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
        if len(records) == len(run_ids) and all(r.dagster_run.is_finished for r in records):
            return records
        servers.require_alive()
        if time.monotonic() > deadline:
            statuses = sorted(r.dagster_run.status.value for r in records)
            raise AssertionError(
                f"runs not finished after {RUNS_TIMEOUT_S:.0f} s: {statuses}\n{servers.logs()}"
            )
        time.sleep(0.5)


@pytest.mark.slow
def test_overlapping_runs_respect_the_run_and_tenant_limits(tmp_path: Path) -> None:
    """Six queued runs, two per tenant, under the repo's run-queue rules with max_concurrent_runs lowered
    from 4 to 2: with three tenants a limit of 4 could never bind (one run per tenant caps them at 3), and
    2 makes both rules bind on this 2-core machine. Runs are submitted tenant by tenant, so the queue head
    holds two runs of one tenant and only the tenant rule keeps them apart."""
    settings = repo_instance_settings()
    settings["concurrency"]["runs"]["max_concurrent_runs"] = TEST_MAX_CONCURRENT_RUNS
    home = prepare_dagster_home(tmp_path / "dagster_home", settings)

    with running_graph(tmp_path, days=3) as graph:
        config = three_tenant_config(graph.config_path, tmp_path / "three-tenants.yaml")
        days = [graph.newest - timedelta(days=1), graph.newest]
        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            run_ids = [
                launch_partition(servers, tenant, day)
                for tenant in ("acme-dev", "acme-prod", "acme-staging")
                for day in days
            ]
            records = wait_until_finished(servers, instance, run_ids)

    statuses = {r.dagster_run.run_id: r.dagster_run.status for r in records}
    assert set(statuses.values()) == {dg.DagsterRunStatus.SUCCESS}, statuses
    spans = {r.dagster_run.run_id: (r.start_time, r.end_time) for r in records}
    assert all(start is not None and end is not None and start < end for start, end in spans.values()), spans
    assert max_overlap(list(spans.values())) == TEST_MAX_CONCURRENT_RUNS, spans
    tenants = {r.dagster_run.run_id: r.dagster_run.tags[TENANT_TAG] for r in records}
    for a, b in combinations(run_ids, 2):
        if tenants[a] == tenants[b]:
            assert max_overlap([spans[a], spans[b]]) == 1, (tenants[a], spans[a], spans[b])
