"""Terminate, as the UI sends it, stops a run at once and leaves no partial partition (DESIGN §3.11).

The run is launched and terminated through the real webserver's GraphQL API and executed by the real
daemon. Each wait is capped; what is asserted is the state the run and the database end in.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.leases import leases
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import open_instance, prepare_dagster_home, running_dagster
from chargeback_assets_tests.graph import running_graph
from chargeback_assets_tests.test_concurrency import wait_until_finished
from chargeback_assets_tests.webserver_queries import TERMINATE, launch_partition, launch_run

WAIT_S = 120.0


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT_S:.0f} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_terminating_a_run_that_retries_its_source_cancels_it_with_nothing_written(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "dagster_home")
    with running_graph(tmp_path, days=3) as graph:
        document = yaml.safe_load(graph.config_path.read_text())
        document["sources"] = {"retry_budget_seconds": 3600}  # left alone, the run would retry for an hour
        document["tenants"]["acme-prod"]["plugin_settings"]["http"]["max_retries"] = 10
        config = tmp_path / "retrying.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        sandbox = graph.sandboxes["acme-prod"]
        sandbox.faults.set("server_error", times=None, path_prefix="/billing/", status=503)

        def billing_requests() -> int:
            return sum(1 for request in sandbox.requests if request.path.startswith("/billing/"))

        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            run_id = launch_partition(servers, "acme-prod", graph.newest)
            wait_for(lambda: billing_requests() >= 2, "a retry of the billing source")
            answer = servers.graphql(TERMINATE, {"runId": run_id})["terminateRun"]
            assert answer["__typename"] == "TerminateRunSuccess", answer
            terminated_at = time.monotonic()
            [record] = wait_until_finished(servers, instance, [run_id])
            stopped_after = time.monotonic() - terminated_at
            requests_at_end = billing_requests()
            time.sleep(2)  # nothing may keep retrying behind a canceled run
            assert billing_requests() == requests_at_end

        with ChargebackDatabase.open(graph.db_path) as db:
            stored = billing_for_day(db, "confluent_cloud", "acme-prod", graph.newest)
            held = leases(db)

    assert record.dagster_run.status == dg.DagsterRunStatus.CANCELED, stopped_after
    assert stored == [], "a canceled run leaves no partial partition"
    assert held == [], "a canceled run gives its leases back"


@pytest.mark.slow
def test_terminating_a_run_while_chargeback_facts_writes_leaves_every_day_whole(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "dagster_home")
    with running_graph(tmp_path, days=12, size="medium") as graph:
        first = graph.newest - timedelta(days=11)
        with (
            running_dagster(home, graph.config_path, daemon=True) as servers,
            open_instance(home) as instance,
        ):
            run_id = launch_run(servers, PARTITIONED, [], f"{first}|acme-prod", f"{graph.newest}|acme-prod")

            def allocating() -> bool:
                starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
                return any(entry.step_key == "chargeback_facts" for entry in starts)

            wait_for(allocating, "the chargeback_facts step")
            answer = servers.graphql(TERMINATE, {"runId": run_id})["terminateRun"]
            assert answer["__typename"] == "TerminateRunSuccess", answer
            [record] = wait_until_finished(servers, instance, [run_id])
            facts = instance.get_materialized_partitions(dg.AssetKey("chargeback_facts"))

        with ChargebackDatabase.open(graph.db_path) as db:
            days = [first + timedelta(days=n) for n in range(12)]
            whole = {}
            for day in days:
                bill = sum(
                    (line.total_cost for line in billing_for_day(db, "confluent_cloud", "acme-prod", day)), 0
                )
                rows = chargeback_rows_for_day(db, "confluent_cloud", "acme-prod", day)
                whole[day] = (not rows) or sum(row.amount for row in rows) == bill
            held = leases(db)

    assert record.dagster_run.status == dg.DagsterRunStatus.CANCELED
    assert all(whole.values()), whole  # each day: its full chargeback or none of it
    assert facts == set(), "an interrupted step materializes nothing"
    assert held == []
