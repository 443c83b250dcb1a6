"""The asset graph against the sandbox: exact totals, idempotent re-materialization, single-run ranges."""

from collections import Counter
from datetime import date, timedelta
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
from chargeback_assets_tests.graph import Graph, running_graph

PARTITIONED = [
    "billing_lines",
    "resources",
    "identities",
    "usage_metrics",
    "identity_resolutions",
    "chargeback_facts",
    "chargeback_csv",
    "chargeback_prometheus",
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


def test_days_older_than_retention_are_dropped_after_each_calculation(tmp_path) -> None:
    """retention_days 3: a run over the last 6 days keeps today-3 onwards and drops the rest."""
    settings = {"acme-prod": {"retention_days": 3}}
    with running_graph(tmp_path, tenant_settings=settings) as graph, dg.instance_for_test() as instance:
        first = graph.newest - timedelta(days=5)
        assert graph.run("acme-prod", first, graph.newest, instance=instance).success
        db = ChargebackDatabase.open(graph.db_path)
        try:
            kept = chargeback_dates(db, "confluent_cloud", "acme-prod")
            billed_days = {day for day in kept if billing_for_day(db, "confluent_cloud", "acme-prod", day)}
        finally:
            db.close()
    horizon = graph.newest + timedelta(days=1) - timedelta(days=3)
    assert kept == [horizon + timedelta(days=offset) for offset in range(3)]
    assert billed_days == set(kept)
