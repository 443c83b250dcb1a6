"""The billing-change, continuation and run-audit sensors, against the sandbox and real runs."""

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.assets.emit import EMIT_ASSETS
from chargeback_assets.constants import CONTINUES_TAG, KEEP_STORED_USAGE, TENANT_TAG, TRIGGER_TAG, USAGE_TAG
from chargeback_assets.definitions import CHARGEBACK_JOB
from chargeback_assets.sensors import INTERRUPTED, RANGE_END, RANGE_START
from chargeback_assets.stages.emission import PIPELINE
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets.storage.pipeline import recent_runs, update_state
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.graph import QUIET, Graph, SensorTicks, running_graph
from chargeback_assets_tests.real_prometheus import free_port
from chargeback_assets_tests.real_pushgateway import pushed, running_pushgateway

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


def watched_days(graph: Graph) -> list:
    return [graph.newest - timedelta(days=offset) for offset in reversed(range(WATCHED))]


def build_watched_days(graph: Graph, instance: dg.DagsterInstance) -> list:
    """Materialize every tenant's watched days, so the sensor starts from partitions that match the source."""
    days = watched_days(graph)
    for tenant in graph.sandboxes:
        assert graph.run(tenant, days[0], days[-1], instance=instance).success
    return days


def billed(graph: Graph, day) -> Decimal:
    """What acme-prod's stored bill of `day` totals."""
    return sum((line.total_cost for line in stored_bill(graph, day)), Decimal(0))


def stored_bill(graph: Graph, day) -> list:
    with ChargebackDatabase.open(graph.db_path) as db:
        return billing_for_day(db, "confluent_cloud", "acme-prod", day)


def test_days_never_materialized_in_the_window_are_requested(graph: Graph, instance) -> None:
    ticks = SensorTicks(graph, instance)
    expected = sorted(f"{day}|{tenant}" for day in watched_days(graph) for tenant in graph.sandboxes)
    assert ticks.tick() == expected
    assert all(request.asset_selection is None for request in ticks.requests), "a new day: every stage"
    assert ticks.tick() == [], "a pending request is not repeated on the next tick"


def test_changed_bill_requests_exactly_that_day_and_a_revert_requests_it_again(
    graph: Graph, instance
) -> None:
    days = build_watched_days(graph, instance)
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


INVENTORY = {"resources", "identities"}


def test_a_revised_bill_is_recalculated_from_billing_lines_on_without_gathering_the_inventory(
    graph: Graph, instance
) -> None:
    days = build_watched_days(graph, instance)
    ticks = SensorTicks(graph, instance)
    day, prod = days[1], graph.sandboxes["acme-prod"]
    billed_before = billed(graph, day)
    lines_before = {line.key for line in stored_bill(graph, day)}
    assert any(resource.startswith("unresolved_billing_") for _, _, _, _, resource, _, _ in lines_before)
    prod.revise_bill(day, Decimal("1.25"))
    assert ticks.tick() == [f"{day}|acme-prod"]
    [request] = ticks.requests
    selected = {key.to_user_string() for key in request.asset_selection or ()}
    assert selected == set(PARTITIONED) - INVENTORY
    assert request.tags[USAGE_TAG] == KEEP_STORED_USAGE

    served = len(prod.requests)
    run = graph.defs.resolve_job_def(CHARGEBACK_JOB).execute_in_process(
        instance=instance,
        run_config=QUIET,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=request.asset_selection,
    )
    paths = [recorded.path for recorded in prod.requests[served:]]
    assert run.success
    assert any(path.startswith("/billing/") for path in paths)
    gathered = [path for path in paths if not path.startswith(("/billing/", "/api/v1/"))]
    assert gathered == [], "the inventory is not gathered again"
    assert not any(path.startswith("/api/v1/") for path in paths), "nor the usage the new bill needs"
    [usage] = [e for e in run.get_asset_materialization_events() if e.asset_key.path == ["usage_metrics"]]
    assert usage.materialization.metadata["usage_source"].value == "stored"
    materialized = {event.asset_key.to_user_string() for event in run.get_asset_materialization_events()}
    assert materialized == selected
    verdicts = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
    every_check = {key.name for check in graph.defs.asset_checks or () for key in check.check_keys}
    assert set(verdicts) == every_check, "each check of the recalculated stages is evaluated again"
    assert all(
        verdicts[name] for name in ("chargeback_reconciles", "stages_consistent", "inventory_complete")
    )
    with ChargebackDatabase.open(graph.db_path) as db:
        charged = sum(row.amount for row in chargeback_rows_for_day(db, "confluent_cloud", "acme-prod", day))
    assert charged == billed(graph, day) != billed_before, "the revised bill is charged in full"
    assert {line.key for line in stored_bill(graph, day)} == lines_before, (
        "a restated bill keeps its lines, those naming no resource too"
    )
    assert ticks.tick() == []


def test_a_revised_bill_on_a_day_whose_inventory_gather_was_incomplete_rebuilds_every_stage(
    graph: Graph, instance
) -> None:
    days = build_watched_days(graph, instance)
    ticks = SensorTicks(graph, instance)
    day = days[1]
    with ChargebackDatabase.open(graph.db_path) as db, db.transaction() as tx:
        update_state(tx, "confluent_cloud", "acme-prod", day, inventory_errors=("/iam/v2/api-keys: 503",))
    graph.sandboxes["acme-prod"].revise_bill(day, Decimal("1.25"))
    assert ticks.tick() == [f"{day}|acme-prod"]
    assert ticks.requests[0].asset_selection is None


def test_a_requested_day_whose_run_failed_on_a_source_outage_is_requested_again_once(
    graph: Graph, instance
) -> None:
    days = build_watched_days(graph, instance)
    ticks = SensorTicks(graph, instance)
    day, prod = days[1], graph.sandboxes["acme-prod"]
    key = f"{day}|acme-prod"
    prod.revise_bill(day, Decimal("1.25"))
    assert ticks.tick() == [key]
    assert graph.run("acme-prod", day, instance=instance).success  # the stored bill is x1.25

    prod.revise_bill(day, Decimal("1.5"))
    assert ticks.tick() == [key]
    prod.faults.set("server_error", times=None, path_prefix="/billing/", status=500)
    outage = graph.run("acme-prod", day, instance=instance, raise_on_error=False)
    assert not outage.success
    graph.audit(instance, outage.run_id)
    prod.faults.clear()

    assert ticks.tick() == [key], "the source is at x1.5, the stored bill still x1.25, the last run failed"
    assert ticks.requests[0].tags[TRIGGER_TAG] == "billing_changed"
    assert ticks.requests[0].asset_selection is None, "after a failed run, every stage"
    assert USAGE_TAG not in ticks.requests[0].tags, "with its usage fetched again"
    assert ticks.tick() == [], "requested once for this state, not on every tick"
    healed = graph.run("acme-prod", day, instance=instance)
    graph.audit(instance, healed.run_id)
    assert ticks.tick() == []
    assert json.loads(ticks.cursor) == {}, "nothing is pending any more"


def test_a_day_whose_later_stages_are_older_than_its_bill_fails_its_check_and_is_requested(
    graph: Graph, instance
) -> None:
    days = build_watched_days(graph, instance)
    ticks = SensorTicks(graph, instance)
    day = days[0]
    graph.sandboxes["acme-staging"].revise_bill(day, Decimal("0.8"))
    billing_only = [dg.AssetKey("billing_lines")]  # an operator materializes the bill alone
    assert graph.run("acme-staging", day, instance=instance, asset_selection=billing_only).success

    check = graph.check("chargeback_facts", "stages_consistent", "acme-staging", day, instance=instance)
    assert not check.passed
    problems = check.metadata["problems"].value.splitlines()
    assert [problem.split(":")[0] for problem in problems] == [
        f"{day} usage_metrics",
        f"{day} identity_resolutions",
        f"{day} chargeback_facts",
    ]
    assert ticks.tick() == [f"{day}|acme-staging"]
    assert ticks.requests[0].tags[TRIGGER_TAG] == "stages_stale"
    assert ticks.tick() == []

    assert graph.run("acme-staging", day, instance=instance).success
    assert graph.check("chargeback_facts", "stages_consistent", "acme-staging", day, instance=instance).passed
    assert ticks.tick() == []


def test_suspended_tenants_are_skipped_by_the_sensors_until_a_manual_run_gathers(tmp_path: Path) -> None:
    settings = {
        name: {"recalculation_days": WATCHED, "gather_failure_threshold": 1, "http": {"max_retries": 0}}
        for name in ("acme-prod", "acme-staging")
    }
    with running_graph(tmp_path, tenant_settings=settings) as graph, dg.instance_for_test() as instance:
        staging = graph.sandboxes["acme-staging"]
        for inventory in ("/org/", "/iam/"):  # environments (and so every cluster) and identities
            staging.faults.set("server_error", times=None, path_prefix=inventory, status=500)
        assert not graph.run("acme-staging", graph.newest, instance=instance, raise_on_error=False).success
        staging.faults.clear()
        # acme-staging is suspended by its inventory; acme-prod's bill fails in a run over both tenants whose
        # selection has no inventory, so acme-staging's healthy billing leaves it suspended.
        selection = [dg.AssetKey(n) for n in ("billing_lines", "identity_resolutions", "chargeback_facts")]
        failed_run = run_over_both_tenants_failing_one(graph, instance, selection)

        continuation = graph.defs.resolve_sensor_def("tenant_continuation_sensor")
        with graph.run_end_context(instance, failed_run, continuation.name) as context:
            [skip] = list(continuation(context.for_run_failure()))
        assert isinstance(skip, dg.SkipReason)
        assert skip.skip_message.startswith("acme-staging is suspended: its last 1 inventory gathers failed")

        ticks = SensorTicks(graph, instance)
        assert ticks.tick() == []
        assert ticks.skipped is not None
        prod_held, staging_held = ticks.skipped.splitlines()
        assert prod_held.startswith("acme-prod is suspended: its last 1 billing gathers failed")
        assert "To resume, fix the billing source, then launch acme-prod by hand" in prod_held
        assert staging_held.startswith("acme-staging is suspended")

        graph.sandboxes["acme-prod"].faults.clear()
        assert graph.run("acme-prod", graph.newest, instance=instance).success, "a manual launch proceeds"
        others = [f"{day}|acme-prod" for day in watched_days(graph)[:-1]]
        assert ticks.tick() == others, "the gather that succeeded lifted acme-prod's suspension only"


def test_run_audit_sensor_writes_a_pipeline_runs_row(graph: Graph, instance) -> None:
    day = graph.newest
    result = graph.run("acme-staging", day, instance=instance)
    assert result.success
    graph.audit(instance, result.run_id)
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
    graph.audit(instance, result.run_id)
    db = ChargebackDatabase.open(graph.db_path)
    try:
        [row] = recent_runs(db, "confluent_cloud", "acme-prod")
    finally:
        db.close()
    assert row.status == "failed"
    assert "tenant acme-prod" in row.error_message and f"date {day}" in row.error_message
    assert "billing source failed" in row.error_message
    assert "sandbox-secret" not in row.error_message


def run_over_both_tenants_failing_one(
    graph: Graph, instance: dg.DagsterInstance, asset_selection: list[dg.AssetKey] | None = None
) -> dg.DagsterRun:
    """The shape of a UI backfill of one date over both tenants, with acme-prod's billing API down."""
    day = graph.newest.isoformat()
    graph.sandboxes["acme-prod"].faults.set("server_error", times=None, path_prefix="/billing/", status=500)
    result = graph.defs.resolve_job_def(CHARGEBACK_JOB).execute_in_process(
        instance=instance,
        tags={RANGE_START: f"{day}|acme-prod", RANGE_END: f"{day}|acme-staging"},
        run_config=QUIET,
        raise_on_error=False,
        asset_selection=asset_selection,
    )
    assert not result.success
    return instance.get_run_by_id(result.run_id)


def test_continuation_sensor_finishes_the_tenants_a_failed_run_left_healthy(graph: Graph, instance) -> None:
    failed_run = run_over_both_tenants_failing_one(graph, instance)
    sensor = graph.defs.resolve_sensor_def("tenant_continuation_sensor")
    with graph.run_end_context(instance, failed_run, sensor.name) as context:
        [request] = list(sensor(context.for_run_failure()))
    day = graph.newest.isoformat()
    assert request.tags[TENANT_TAG] == "acme-staging"
    assert request.tags[CONTINUES_TAG] == failed_run.run_id
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (f"{day}|acme-staging",) * 2
    selected = {key.to_user_string() for key in request.asset_selection}
    materialized = {
        event.dagster_event.asset_key.to_user_string()
        for event in instance.all_logs(failed_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if event.dagster_event.partition == f"{day}|acme-staging"
    }
    assert "billing_lines" in materialized and "chargeback_facts" in selected
    assert not selected & materialized, "what the failed run materialized is not computed again"

    job = graph.defs.resolve_job_def(CHARGEBACK_JOB).get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys)
    )
    continued = job.execute_in_process(  # what the daemon launches for the request
        instance=instance,
        tags=request.tags,
        run_config=QUIET,
    )
    facts = instance.get_materialized_partitions(dg.AssetKey("chargeback_facts"))
    assert continued.success
    checks = {evaluation.check_name for evaluation in continued.get_asset_check_evaluations()}
    assert "billing_well_formed" in checks, "the check the failed run skipped on a kept asset runs now"
    assert facts == {f"{day}|acme-staging"}, "the healthy tenant is finished, the failed one is not touched"


def test_continuation_sensor_ignores_a_run_whose_only_tenant_failed(graph: Graph, instance) -> None:
    graph.sandboxes["acme-prod"].faults.set("server_error", times=None, path_prefix="/billing/", status=500)
    result = graph.run("acme-prod", graph.newest, instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    sensor = graph.defs.resolve_sensor_def("tenant_continuation_sensor")
    with graph.run_end_context(instance, run, sensor.name) as context:
        assert list(sensor(context.for_run_failure())) == []


def test_run_audit_of_a_run_some_tenants_failed_gives_each_tenant_its_own_outcome(
    graph: Graph, instance
) -> None:
    failed_run = run_over_both_tenants_failing_one(graph, instance)
    graph.audit(instance, failed_run.run_id)
    with ChargebackDatabase.open(graph.db_path) as db:
        [prod] = recent_runs(db, "confluent_cloud", "acme-prod")
        [staging] = recent_runs(db, "confluent_cloud", "acme-staging")
    assert prod.status == "failed"
    assert prod.error_message.startswith("billing_lines: ") and "billing source failed" in prod.error_message
    assert staging.status == INTERRUPTED
    assert staging.error_message == "stopped because acme-prod failed in the same run"


def emissions(graph: Graph, emitter: str = "metrics") -> list[tuple]:
    with ChargebackDatabase.open(graph.db_path) as db:
        records = emission_records(db, "confluent_cloud", "acme-prod", emitter, PIPELINE)
    return [(r.date, r.status, r.attempt_count) for r in records]


def emission_retry_tick(graph: Graph, instance: dg.DagsterInstance) -> dg.SensorResult:
    sensor = graph.defs.resolve_sensor_def("emission_retry_sensor")
    with dg.build_sensor_context(
        instance=instance,
        resources={"chargeback": graph.resource},
        definitions=graph.defs,
    ) as context:
        return sensor(context)


def retry_requests(graph: Graph, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    return list(emission_retry_tick(graph, instance).run_requests)


def launch(graph: Graph, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon launches for the request."""
    job = graph.defs.resolve_job_def(CHARGEBACK_JOB).get_subset(asset_selection=set(request.asset_selection))
    return job.execute_in_process(
        instance=instance, tags=request.tags, run_config=QUIET, raise_on_error=False
    )


def test_a_failed_push_is_retried_by_the_sensor_until_the_pushgateway_is_up(tmp_path: Path) -> None:
    """The Pushgateway is down when the day is published: the partition fails and is recorded failed. The
    sensor asks for its emission again, once per recorded attempt; the retry fails while the Pushgateway is
    down and publishes once it is up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emitter = {
        "type": "prometheus",
        "name": "metrics",
        "params": {"output_dir": str(tmp_path / "om"), "pushgateway_url": url},
    }
    settings = {"acme-prod": {"emitters": [emitter]}}
    with (
        running_graph(tmp_path, days=10, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        day = graph.newest
        key = f"{day}|acme-prod"
        assert retry_requests(graph, instance) == [], "nothing calculated, nothing owed"
        failed = graph.run("acme-prod", day, instance=instance, raise_on_error=False)
        assert not failed.success
        assert emissions(graph) == [(day, "failed", 1)]

        [request] = retry_requests(graph, instance)
        assert request.asset_selection == [dg.AssetKey("chargeback_prometheus")]
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (key, key)
        assert request.tags[TENANT_TAG] == "acme-prod" and request.tags[TRIGGER_TAG] == "emission_retry"
        assert request.run_key == f"emission_retry|{key}..{key}|chargeback_prometheus|{day}:metrics:1"
        assert not launch(graph, instance, request).success, "still down"
        assert emissions(graph) == [(day, "failed", 2)]

        [request] = retry_requests(graph, instance)
        assert request.run_key.endswith(f"{day}:metrics:2"), "a new attempt is a new request"
        with running_pushgateway(tmp_path, port):
            retried = launch(graph, instance, request)
            assert retried.success
            assert [
                m.partition for m in retried.asset_materializations_for_node("chargeback_prometheus")
            ] == [key]
            assert emissions(graph) == [(day, "emitted", 3)]
            with ChargebackDatabase.open(graph.db_path) as db:
                stored = chargeback_rows_for_day(db, "confluent_cloud", "acme-prod", day)
            charged = pushed(url, "chargeback_identity_info", "acme-prod")
            assert set(charged) == {r.identity_id for r in stored} and len(charged) > 1
        assert retry_requests(graph, instance) == [], "nothing owed any more"


def test_days_calculated_but_never_emitted_are_owed_in_one_ranged_run(tmp_path: Path) -> None:
    """A run that ended after chargeback_facts (here: the emitters were not selected) leaves days whose
    chargeback nobody published: the sensor asks for them, one ranged run over the consecutive days."""
    emitter = {"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}}
    with (
        running_graph(tmp_path, days=10, tenant_settings={"acme-prod": {"emitters": [emitter]}}) as graph,
        dg.instance_for_test() as instance,
    ):
        first, last = graph.newest - timedelta(days=2), graph.newest
        upstream = graph.defs.resolve_job_def(CHARGEBACK_JOB).get_subset(
            asset_selection={dg.AssetKey(name) for name in PARTITIONED if name not in EMIT_ASSETS.values()}
        )
        assert upstream.execute_in_process(
            instance=instance,
            tags={RANGE_START: f"{first}|acme-prod", RANGE_END: f"{last}|acme-prod"},
            run_config=QUIET,
        ).success
        running = instance.add_run(dg.DagsterRun(job_name=CHARGEBACK_JOB, status=dg.DagsterRunStatus.STARTED))
        with ChargebackDatabase.open(graph.db_path) as db, db.transaction() as tx:  # it recalculated `last`
            update_state(tx, "confluent_cloud", "acme-prod", last, calculation_run_id=running.run_id)
        [request] = retry_requests(graph, instance)
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
            f"{first}|acme-prod",
            f"{last - timedelta(days=1)}|acme-prod",
        ), "the day of a run still going is that run's to emit"

        instance.report_run_canceled(running)
        [request] = retry_requests(graph, instance)
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
            f"{first}|acme-prod",
            f"{last}|acme-prod",
        )
        assert launch(graph, instance, request).success
        assert emissions(graph, "files") == [(first + timedelta(days=n), "emitted", 1) for n in range(3)]
        assert retry_requests(graph, instance) == []


def test_emissions_owed_by_a_suspended_tenant_wait_until_a_manual_run_lifts_the_suspension(
    tmp_path: Path,
) -> None:
    emitter = {"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}}
    settings = {
        "acme-prod": {"emitters": [emitter], "gather_failure_threshold": 1, "http": {"max_retries": 0}}
    }
    with (
        running_graph(tmp_path, days=10, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        day, prod = graph.newest, graph.sandboxes["acme-prod"]
        upstream = [dg.AssetKey(name) for name in PARTITIONED if name not in EMIT_ASSETS.values()]
        assert graph.run("acme-prod", day, instance=instance, asset_selection=upstream).success
        assert len(retry_requests(graph, instance)) == 1, "calculated, never emitted: owed"

        billing = [dg.AssetKey("billing_lines")]
        prod.faults.set("server_error", times=None, path_prefix="/billing/", status=500)
        assert not graph.run(
            "acme-prod", day, instance=instance, asset_selection=billing, raise_on_error=False
        ).success
        skipped = emission_retry_tick(graph, instance)
        assert not skipped.run_requests
        assert skipped.skip_reason.skip_message.startswith(
            "acme-prod is suspended: its last 1 billing gathers"
        )

        prod.faults.clear()
        assert graph.run("acme-prod", day, instance=instance, asset_selection=billing).success
        [request] = retry_requests(graph, instance)
        assert request.tags[TENANT_TAG] == "acme-prod"
