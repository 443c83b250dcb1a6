"""The billing-change sensor and the run-audit sensors, against the sandbox and real runs."""

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.resources import ChargebackResource
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.pipeline import recent_runs
from chargeback_assets_tests.graph import Graph, running_graph

WATCHED = 3


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[Graph]:
    settings = {
        name: {"recalculation_days": WATCHED, "http": {"max_retries": 0}}
        for name in ("acme-prod", "acme-staging")
    }
    with running_graph(tmp_path, tenant_settings=settings) as running:
        yield running


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


class SensorTicks:
    """Evaluates the billing-change sensor tick after tick, carrying its cursor like the daemon does."""

    def __init__(self, graph: Graph, instance: dg.DagsterInstance) -> None:
        self.graph, self.instance, self.cursor = graph, instance, None
        self.sensor = graph.defs.resolve_sensor_def("billing_change_sensor")

    def tick(self) -> list[str]:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"chargeback": ChargebackResource(config_path=str(self.graph.config_path))},
            definitions=self.graph.defs,
        ) as context:
            result = self.sensor(context)
        self.cursor = result.cursor
        return sorted(request.partition_key for request in result.run_requests)


def watched_days(graph: Graph) -> list:
    return [graph.newest - timedelta(days=offset) for offset in reversed(range(WATCHED))]


def test_days_never_materialized_in_the_window_are_requested(graph: Graph, instance) -> None:
    ticks = SensorTicks(graph, instance)
    expected = sorted(f"{day}|{tenant}" for day in watched_days(graph) for tenant in graph.sandboxes)
    assert ticks.tick() == expected
    assert ticks.tick() == [], "a pending request is not repeated on the next tick"


def test_changed_bill_requests_exactly_that_day_and_a_revert_requests_it_again(
    graph: Graph, instance
) -> None:
    days = watched_days(graph)
    for tenant in graph.sandboxes:
        assert graph.run(tenant, days[0], days[-1], instance=instance).success
    ticks = SensorTicks(graph, instance)
    assert ticks.tick() == [], "nothing changed since the partitions were built"

    revised = days[1]
    prod = graph.sandboxes["acme-prod"]
    prod.revise_bill(revised, Decimal("1.25"))
    assert ticks.tick() == [f"{revised}|acme-prod"]
    assert ticks.tick() == [], "already requested, not yet materialized"
    assert graph.run("acme-prod", revised, instance=instance).success
    assert ticks.tick() == []

    prod.revert_bill(revised)
    assert ticks.tick() == [f"{revised}|acme-prod"], "a revert to the older bill must re-trigger"
    requested = json.loads(ticks.cursor)
    assert set(requested) == {f"acme-prod|{revised}"}


def test_run_audit_sensor_writes_a_pipeline_runs_row(graph: Graph, instance) -> None:
    day = graph.newest
    result = graph.run("acme-staging", day, instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    success_event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS")
    sensor = graph.defs.resolve_sensor_def("run_audit_success")
    with dg.build_run_status_sensor_context(
        sensor_name="run_audit_success",
        dagster_event=success_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"chargeback": ChargebackResource(config_path=str(graph.config_path))},
    ) as context:
        sensor(context)
    db = ChargebackDatabase.open(graph.db_path)
    try:
        [row] = recent_runs(db, "confluent_cloud", "acme-staging")
    finally:
        db.close()
    facts = result.asset_materializations_for_node("chargeback_facts")[0].metadata
    assert (row.run_id, row.status, row.dates) == (result.run_id, "success", (day,))
    assert row.rows_written == facts["dagster/row_count"].value > 0
    assert row.error_message is None


def test_run_audit_failure_sensor_records_the_step_error(graph: Graph, instance) -> None:
    day = graph.newest
    graph.sandboxes["acme-prod"].faults.set("server_error", times=None, path_prefix="/billing/", status=500)
    result = graph.run("acme-prod", day, instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure_event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    with dg.build_run_status_sensor_context(
        sensor_name="run_audit_failure",
        dagster_event=failure_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"chargeback": ChargebackResource(config_path=str(graph.config_path))},
    ) as context:
        graph.defs.resolve_sensor_def("run_audit_failure")(context.for_run_failure())
    db = ChargebackDatabase.open(graph.db_path)
    try:
        [row] = recent_runs(db, "confluent_cloud", "acme-prod")
    finally:
        db.close()
    assert row.status == "failed"
    assert "tenant acme-prod" in row.error_message and f"date {day}" in row.error_message
    assert "billing source failed" in row.error_message
    assert "sandbox-secret" not in row.error_message
