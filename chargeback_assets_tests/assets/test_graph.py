"""The asset graph against the sandbox: exact totals, idempotent re-materialization, single-run ranges."""

import sqlite3
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import yaml

from chargeback_assets.definitions import build_definitions
from chargeback_assets.sandbox.organization import Organization
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_dates, chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets_tests.dagster_processes import REPO_ROOT
from chargeback_assets_tests.graph import QUIET, Graph, running_graph

TODAY = datetime.now(UTC).date()
PARTITIONED = [
    "billing_lines",
    "resources",
    "identities",
    "usage_metrics",
    "identity_resolutions",
    "chargeback_facts",
    "chargeback_csv",
    "chargeback_prometheus",
    "chargeback_focus",
    "topic_metrics",
    "topic_attribution",
    "topic_outputs",
]


def expected_bill(org: Organization, day: date) -> Decimal:
    """The day's bill computed straight from the sandbox's Cost rows, without any of our code."""
    amounts = [Decimal(str(row["amount"])) for row in org.costs if row["start_date"] == day.isoformat()]
    return sum(amounts, Decimal(0)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def stored(graph: Graph, tenant: str, day: date) -> tuple[list, list]:
    db = ChargebackDatabase.open(graph.db_path)
    try:
        return billing_for_day(db, "confluent_cloud", tenant, day), chargeback_rows_for_day(
            db, "confluent_cloud", tenant, day
        )
    finally:
        db.close()


def test_definitions_load_with_every_asset_check_schedule_and_sensor(graph: Graph) -> None:
    dg.Definitions.validate_loadable(graph.defs)
    keys = {key.to_user_string() for key in graph.defs.resolve_asset_graph().get_all_asset_keys()}
    assert set(PARTITIONED) <= keys
    assert graph.defs.resolve_schedule_def("daily_chargeback_schedule").cron_schedule == "0 3 * * *"
    for sensor in (
        "billing_change_sensor",
        "tenant_continuation_sensor",
        "emission_retry_sensor",
        "run_audit_success",
        "run_audit_failure",
    ):
        assert graph.defs.resolve_sensor_def(sensor)
    partitions = graph.defs.resolve_assets_def("chargeback_facts").partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert sorted(d.name for d in partitions.partitions_defs) == ["date", "tenant"]


def test_every_asset_links_its_source_and_carries_stage_tags_and_configured_owners(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("CCLOUD_API_KEY", "example-key")
    config = yaml.safe_load((REPO_ROOT / "chargeback.example.yaml").read_text())
    config["orchestration"]["asset_owners"] = ["team:finops", "dana@example.com"]
    path = tmp_path / "chargeback.yaml"
    path.write_text(yaml.safe_dump(config))
    defs = build_definitions(str(path))
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for name in PARTITIONED:
        spec = specs[name]
        assert spec.owners == ["team:finops", "dana@example.com"], name
        assert spec.tags["chargeback/stage"] == spec.group_name, name
        references = spec.metadata["dagster/code_references"].code_references
        assert [Path(ref.file_path).parent.name for ref in references] == ["assets"], name
    schema = specs["chargeback_facts"].metadata["dagster/column_schema"]
    assert [column.name for column in schema.columns][-1] == "amount"


def test_one_partition_materializes_every_asset_with_the_exact_bill(graph: Graph, instance) -> None:
    day = graph.newest - timedelta(days=3)
    result = graph.run("acme-prod", day, instance=instance)
    assert result.success
    materialized = Counter(e.asset_key.to_user_string() for e in result.get_asset_materialization_events())
    assert materialized == Counter({name: 1 for name in PARTITIONED})
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["chargeback_reconciles"] is True

    lines, rows = stored(graph, "acme-prod", day)
    bill = expected_bill(graph.sandboxes["acme-prod"].org, day)
    assert bill > 0
    assert sum(line.total_cost for line in lines) == bill
    assert sum(row.amount for row in rows) == bill
    facts = result.asset_materializations_for_node("chargeback_facts")[0].metadata
    assert facts["billed_exact"].value == f"{bill} USD"
    assert facts["allocated_exact"].value == f"{bill} USD"
    assert facts["billed"].value == float(bill)
    for asset in PARTITIONED:
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {f"{day.isoformat()}|acme-prod"}


def test_an_assets_checks_are_evaluated_in_one_step_each_check_still_its_own(graph: Graph, instance) -> None:
    """One step per asset checked: a revised day ran 9 check steps beside its 10 asset steps, and a step
    costs more than most checks do. The UI still lists, and a run can still select, each check apart."""
    result = graph.run("acme-prod", graph.newest, instance=instance)
    assert result.success
    steps: dict[str, set[str]] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.asset_check_evaluation_data
            steps.setdefault(str(event.step_key), set()).add(evaluation.check_name)
    assert steps == {
        "chargeback_facts_checks": {
            "chargeback_reconciles",
            "unallocated_share",
            "unattributed_share",
            "inventory_complete",
            "stages_consistent",
        },
        "usage_metrics_checks": {"metrics_fetched"},
        "billing_lines_checks": {"billing_well_formed"},
        "topic_attribution_checks": {"topic_attribution_reconciles"},
        "topic_metrics_checks": {"topic_metrics_fetched"},
    }
    check_keys = {key.name for key in graph.defs.resolve_asset_graph().asset_check_keys}
    assert check_keys == set().union(*steps.values())


def test_rematerializing_a_partition_gives_identical_rows(graph: Graph, instance) -> None:
    day = graph.newest - timedelta(days=5)
    assert graph.run("acme-staging", day, instance=instance).success
    first = stored(graph, "acme-staging", day)
    assert graph.run("acme-staging", day, instance=instance).success
    assert stored(graph, "acme-staging", day) == first
    assert len(first[1]) > 0


def test_single_run_range_over_ten_days_and_two_tenants(graph: Graph, instance) -> None:
    first_day, last_day = graph.newest - timedelta(days=9), graph.newest
    for tenant in ("acme-prod", "acme-staging"):
        result = graph.run(tenant, first_day, last_day, instance=instance)
        assert result.success
        assert len(result.get_asset_materialization_events()) == 10 * len(PARTITIONED)
    db = ChargebackDatabase.open(graph.db_path)
    try:
        for tenant, server in graph.sandboxes.items():
            for offset in range(10):
                day = first_day + timedelta(days=offset)
                rows = chargeback_rows_for_day(db, "confluent_cloud", tenant, day)
                assert sum(r.amount for r in rows) == expected_bill(server.org, day), (tenant, day)
                state = get_state(db, "confluent_cloud", tenant, day)
                assert (state.billing_gathered, state.resources_gathered, state.chargeback_calculated) == (
                    True,
                    True,
                    True,
                )
    finally:
        db.close()
    assert len(instance.get_materialized_partitions(dg.AssetKey("chargeback_facts"))) == 20


def stored_days(graph: Graph, tenant: str = "acme-prod") -> dict[date, tuple[Decimal, Decimal]]:
    """day -> (billed, allocated) for every day the database holds billing or chargeback of."""
    with ChargebackDatabase.open(graph.db_path) as db:
        days = set(chargeback_dates(db, "confluent_cloud", tenant)) | {
            date.fromisoformat(text)
            for (text,) in db.conn.execute(
                "SELECT DISTINCT substr(timestamp, 1, 10) FROM billing WHERE tenant_id = ?", (tenant,)
            )
        }
        return {
            day: (
                sum(
                    (line.total_cost for line in billing_for_day(db, "confluent_cloud", tenant, day)),
                    Decimal(0),
                ),
                sum(
                    (row.amount for row in chargeback_rows_for_day(db, "confluent_cloud", tenant, day)),
                    Decimal(0),
                ),
            )
            for day in sorted(days)
        }


def test_a_backfill_of_days_past_retention_keeps_them_and_a_later_run_removes_them_and_says_so(
    tmp_path,
) -> None:
    """retention_days 30 and a history that ended 55 days ago: a 5-day backfill keeps its 5 days (they were
    deleted by the very run that computed them); the next run, over another day, removes them and leaves an
    observation on each removed partition."""
    settings = {"acme-prod": {"retention_days": 30}}
    end = TODAY - timedelta(days=55)
    with running_graph(tmp_path, days=12, tenant_settings=settings, end_date=end) as graph:
        org = graph.sandboxes["acme-prod"].org
        first = graph.newest - timedelta(days=4)
        backfill = [first + timedelta(days=offset) for offset in range(5)]
        with dg.instance_for_test() as instance:
            result = graph.run("acme-prod", first, graph.newest, instance=instance)
            assert result.success
            assert len(result.get_asset_materialization_events()) == 5 * len(PARTITIONED)
            assert stored_days(graph) == {day: (expected_bill(org, day),) * 2 for day in backfill}
            assert all(expected_bill(org, day) > 0 for day in backfill)

            later = first - timedelta(days=2)
            result = graph.run("acme-prod", later, instance=instance)
            assert result.success
            assert stored_days(graph) == {later: (expected_bill(org, later),) * 2}
            observations = {
                event.partition: event.asset_observation_data.asset_observation.metadata
                for event in result.all_events
                if event.event_type_value == "ASSET_OBSERVATION"
            }
            assert sorted(observations) == [f"{day.isoformat()}|acme-prod" for day in backfill]
            for day in backfill:
                metadata = observations[f"{day.isoformat()}|acme-prod"]
                assert metadata["retention"].value == (
                    f"removed by run {result.run_id}: the day is older than the horizon "
                    f"{TODAY - timedelta(days=30)} (retention_days)"
                )
                rows = metadata["rows_removed"].value
                assert rows["billing"] > 0 and rows["chargeback_facts"] > 0 and rows["pipeline_state"] == 1


def test_a_clock_far_ahead_of_the_history_removes_no_computed_day_and_refuses_a_larger_jump(
    tmp_path,
) -> None:
    """A history that ended 400 days ago, default retention_days (250): every day is past retention. The days
    a run computes stay; a run that would remove more than retention_max_days_per_run (7) stored days removes
    nothing and fails with a message saying so; with the limit raised, it removes them."""
    end = TODAY - timedelta(days=400)
    with running_graph(tmp_path, days=14, end_date=end) as graph, dg.instance_for_test() as instance:
        org = graph.sandboxes["acme-prod"].org
        days = [graph.newest - timedelta(days=offset) for offset in reversed(range(12))]
        assert graph.run("acme-prod", days[0], days[9], instance=instance).success
        ten = {day: (expected_bill(org, day),) * 2 for day in days[:10]}
        assert stored_days(graph) == ten

        refused = graph.run("acme-prod", days[10], instance=instance, raise_on_error=False)
        assert not refused.success
        failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.user_failure_data.description
        assert (
            f"acme-prod: tenant acme-prod: retention refused, nothing removed: the run's date {TODAY} "
            f"minus retention_days (250) would remove the stored dates {days[0]}..{days[9]} (10 days), more "
            "than retention_max_days_per_run (7) allows in one run. If the clock is right, raise "
            "tenants.acme-prod.retention_max_days_per_run to 10 for one run."
        ) in message
        assert stored_days(graph) == {**ten, days[10]: (expected_bill(org, days[10]),) * 2}
        computed = refused.asset_materializations_for_node("chargeback_facts")
        assert [m.partition for m in computed] == [f"{days[10]}|acme-prod"], "the computed day is kept"

        document = yaml.safe_load(graph.config_path.read_text())
        document["tenants"]["acme-prod"]["retention_max_days_per_run"] = 10
        raised = replace(graph, config_path=tmp_path / "raised.yaml", _defs=None)
        raised.config_path.write_text(yaml.safe_dump(document))
        assert raised.run("acme-prod", days[10], days[11], instance=instance).success
        assert stored_days(graph) == {day: (expected_bill(org, day),) * 2 for day in days[10:]}


def test_a_partition_whose_billing_exists_but_whose_facts_are_gone_fails_its_check(
    graph: Graph, instance
) -> None:
    day = graph.newest
    assert graph.run("acme-prod", day, instance=instance).success
    with sqlite3.connect(graph.db_path) as conn:
        conn.execute("DELETE FROM chargeback_facts WHERE tenant_id = 'acme-prod'")
    check = dg.AssetCheckKey(dg.AssetKey("chargeback_facts"), "chargeback_reconciles")
    job = dg.define_asset_job(  # the check and what waits for it (a job of checks alone takes no partition)
        "check_again", selection=dg.AssetSelection.assets("chargeback_csv") | dg.AssetSelection.checks(check)
    )
    defs = dg.Definitions.merge(graph.defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("check_again").execute_in_process(
        instance=instance, partition_key=f"{day}|acme-prod", run_config=QUIET, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    lines, _ = stored(graph, "acme-prod", day)
    assert not evaluation.passed and len(lines) > 0
    assert evaluation.metadata["chargeback_rows"].value == 0
    assert evaluation.metadata["mismatches"].value.startswith(
        f"{day}: {len(lines)} billing line(s) but no chargeback rows (never calculated, or removed)"
    )
