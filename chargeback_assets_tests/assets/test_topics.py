"""Topic attribution end to end: the sandbox's topic metrics, real runs, the blocking check, recalculation."""

import csv
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.constants import TENANT_TAG
from chargeback_assets.definitions import CHARGEBACK_JOB
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.topics import UNATTRIBUTED_TOPIC
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox.generator import INTERNAL_TOPICS, TOPIC_RECEIVED_BYTES
from chargeback_assets.sensors import RANGE_END, RANGE_START
from chargeback_assets.stages.topic_outputs import PIPELINE
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets.storage.topics import topic_lines_for_day, topic_rows_for_day
from chargeback_assets_tests.graph import QUIET, Graph, running_graph
from chargeback_assets_tests.test_partition_truth import readme_contract
from chargeback_assets_tests.test_sensors import launch, retry_requests

ECO = "confluent_cloud"
CLUSTER_LINES = {
    "KAFKA_NUM_CKUS",
    "KAFKA_NETWORK_READ",
    "KAFKA_NETWORK_WRITE",
    "KAFKA_STORAGE",
    "KAFKA_BASE",
    "KAFKA_PARTITION",
}
OVERLAY = {
    "enabled": True,
    "cost_mapping_overrides": {"KAFKA_NUM_CKUS": "even_split", "KAFKA_PARTITION": "disabled"},
}


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[Graph]:
    emitters = [
        {"type": "csv", "params": {"output_dir": str(tmp_path / "csv")}},
        {"type": "prometheus", "params": {"output_dir": str(tmp_path / "om")}},
    ]
    settings = {"acme-prod": {"topic_attribution": OVERLAY, "recalculation_days": 3, "emitters": emitters}}
    with running_graph(tmp_path, tenant_settings=settings) as running:
        yield running


def stored(graph: Graph, tenant: str, day: date):
    with ChargebackDatabase.open(graph.db_path) as db:
        return (
            billing_for_day(db, ECO, tenant, day),
            topic_lines_for_day(db, ECO, tenant, day),
            topic_rows_for_day(db, ECO, tenant, day),
        )


def sums_by_line(rows) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[row.line_id] += row.amount
    return dict(sums)


def birth_of(graph: Graph, tenant: str, topic: str) -> datetime:
    usage = graph.sandboxes[tenant].org.usage
    [series] = [s for s in usage.series(TOPIC_RECEIVED_BYTES) if s.label_dict()["topic"] == topic]
    return datetime.fromtimestamp(usage.extent_ms(series)[0] / 1000, tz=UTC)


def test_every_cluster_line_is_split_over_its_topics_to_the_ten_thousandth(graph: Graph, instance) -> None:
    day = graph.newest - timedelta(days=2)
    result = graph.run("acme-prod", day, instance=instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["topic_attribution_reconciles"] is True
    assert checks["topic_metrics_fetched"] is True

    lines, recorded, rows = stored(graph, "acme-prod", day)
    cluster_lines = {line_id(line): line for line in lines if line.product_type in CLUSTER_LINES}
    assert cluster_lines and {r.line_id for r in recorded} >= set(cluster_lines)
    sums = sums_by_line(rows)
    status = {r.line_id: r.status for r in recorded}
    for lid, line in cluster_lines.items():
        disabled = line.product_type == "KAFKA_PARTITION"
        assert sums.get(lid, Decimal(0)) == (Decimal(0) if disabled else line.total_cost), line
        assert status[lid] == ("disabled" if disabled else "attributed")
    assert not {row.topic for row in rows} & set(INTERNAL_TOPICS)

    # The sandbox's last cluster exports no topic metrics: its lines go to UNATTRIBUTED (even_split default).
    by_cluster = defaultdict(set)
    for row in rows:
        by_cluster[row.resource_id].add((row.topic, row.detail))
    silent = [
        cluster for cluster, topics in by_cluster.items() if {t for t, _ in topics} == {UNATTRIBUTED_TOPIC}
    ]
    assert len(silent) == 1 and by_cluster[silent[0]] == {(UNATTRIBUTED_TOPIC, "no_topics_located")}
    talking = next(c for c in by_cluster if c not in silent)
    network = [r for r in rows if r.resource_id == talking and r.product_type == "KAFKA_NETWORK_WRITE"]
    assert {r.method for r in network} == {"bytes_ratio"} and "archive-idle" not in {r.topic for r in network}
    storage = [r for r in rows if r.resource_id == talking and r.product_type == "KAFKA_STORAGE"]
    assert {r.method for r in storage} == {"retained_bytes_ratio"} and "archive-idle" in {
        r.topic for r in storage
    }

    metadata = result.asset_materializations_for_node("topic_attribution")[0].metadata
    top = [rec.data for rec in metadata["top_topics"].value.records]
    assert top and Decimal(top[0]["amount"]) == max(
        sum((r.amount for r in rows if (r.resource_id, r.topic) == key), Decimal(0))
        for key in {(r.resource_id, r.topic) for r in rows}
    )
    assert metadata["attributed_exact"].value == f"{sum(sums.values())} USD"

    # Published: the topic CSV holds every topic row, the OpenMetrics file the per-topic series.
    with (graph.workdir / "csv" / f"topic_attr_acme-prod_{day}.csv").open(newline="") as handle:
        published = list(csv.DictReader(handle))
    assert sorted(
        (r["resource_id"], r["topic"], r["product_type"], Decimal(r["amount"])) for r in published
    ) == sorted((row.resource_id, row.topic, row.product_type, row.amount) for row in rows)
    series = [
        line
        for line in (graph.workdir / "om" / "acme-prod.om").read_text().splitlines()
        if line.startswith("chargeback_topic_amount{")
    ]
    assert len(series) == len({(r.resource_id, r.topic, r.product_type) for r in rows})
    assert sum(Decimal(line.rsplit(" ", 2)[1]) for line in series) == sum(sums.values())

    # What each partition shows is what the README's queries give (the slow webserver test checks all).
    contract = readme_contract()
    params = {"ecosystem": ECO, "tenant_id": "acme-prod", "day": day.isoformat()}
    with sqlite3.connect(graph.db_path) as db:
        for asset in ("topic_metrics", "topic_attribution", "topic_outputs"):
            shown = result.asset_materializations_for_node(asset)[0].metadata
            for key, sql in contract[asset].items():
                if sql is not None:
                    [(expected,)] = db.execute(sql, params).fetchall()
                    assert shown[key].value == pytest.approx(expected), (asset, key)


def test_a_tenant_without_the_overlay_gets_empty_topic_partitions(graph: Graph, instance) -> None:
    day = graph.newest - timedelta(days=2)
    result = graph.run("acme-staging", day, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("topic_attribution")[0].metadata
    assert metadata["topic_attribution_enabled"].value is False
    assert metadata["dagster/row_count"].value == 0
    assert stored(graph, "acme-staging", day)[1:] == ([], [])


def test_a_topic_created_mid_day_gets_half_a_share_of_an_even_split_line(graph: Graph, instance) -> None:
    born = birth_of(graph, "acme-prod", "events-late")
    assert (born.hour, born.minute) == (12, 0)
    day = born.date()
    assert graph.run("acme-prod", day - timedelta(days=1), day, instance=instance).success
    before = stored(graph, "acme-prod", day - timedelta(days=1))[2]
    assert "events-late" not in {row.topic for row in before}
    rows = stored(graph, "acme-prod", day)[2]
    even = {
        r.topic: r.amount for r in rows if r.product_type == "KAFKA_NUM_CKUS" and r.method == "even_split"
    }
    assert abs(even["events-late"] * 2 - even["orders"]) <= Decimal("0.0002"), even


def test_a_billing_revision_rematerializes_the_topic_rows(graph: Graph, instance) -> None:
    day = graph.newest - timedelta(days=1)
    assert graph.run("acme-prod", day, instance=instance).success
    _, _, first = stored(graph, "acme-prod", day)

    graph.sandboxes["acme-prod"].revise_bill(day, Decimal("1.25"))
    sensor = graph.defs.resolve_sensor_def("billing_change_sensor")
    with dg.build_sensor_context(
        instance=instance,
        resources={"chargeback": ChargebackResource(config_path=str(graph.config_path))},
        definitions=graph.defs,
    ) as context:
        requests = sensor(context).run_requests
    [request] = [r for r in requests if r.partition_key == f"{day}|acme-prod"]
    selected = request.asset_selection or sensor.asset_selection.resolve(graph.defs.resolve_asset_graph())
    assert {dg.AssetKey("topic_metrics"), dg.AssetKey("topic_attribution")} <= set(selected)

    assert graph.run("acme-prod", day, instance=instance).success
    lines, _, rows = stored(graph, "acme-prod", day)
    sums = sums_by_line(rows)
    revised = [line for line in lines if line.product_type in CLUSTER_LINES - {"KAFKA_PARTITION"}]
    assert all(sums[line_id(line)] == line.total_cost for line in revised)
    assert sum(r.amount for r in rows) != sum(r.amount for r in first)


def test_skip_leaves_silent_and_unreachable_clusters_unattributed_and_says_why(
    tmp_path: Path, instance
) -> None:
    overlay = {"enabled": True, "missing_metrics_behavior": "skip"}
    settings = {"acme-prod": {"topic_attribution": overlay, "metrics": {"max_attempts": 1}}}
    with running_graph(tmp_path, days=5, tenant_settings=settings) as graph:
        day = graph.newest
        result = graph.run("acme-prod", day, instance=instance)
        assert result.success
        _, recorded, rows = stored(graph, "acme-prod", day)
        skipped = {r.resource_id for r in recorded if r.status == "skipped"}
        attributed = {r.resource_id for r in recorded if r.status == "attributed"}
        assert len(skipped) == 1 and attributed and not skipped & attributed
        assert {r.detail for r in recorded if r.status == "skipped"} == {"no_topics_located"}
        assert not {row.resource_id for row in rows} & skipped

        graph.sandboxes["acme-prod"].faults.set("server_error", times=None, path_prefix="/api/v1/query_range")
        result = graph.run("acme-prod", day, instance=instance)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["topic_metrics_fetched"] is False
        assert checks["topic_attribution_reconciles"] is True
        _, recorded, rows = stored(graph, "acme-prod", day)
        assert {(r.status, r.detail) for r in recorded} == {("skipped", "metrics_fetch_failed")}
        assert rows == []


def test_topic_outputs_of_a_day_computed_from_an_older_bill_are_withdrawn_not_published(
    graph: Graph, instance
) -> None:
    day = graph.newest - timedelta(days=1)
    assert graph.run("acme-prod", day, instance=instance).success
    published = graph.workdir / "csv" / f"topic_attr_acme-prod_{day}.csv"
    assert published.exists()

    graph.sandboxes["acme-prod"].revise_bill(day, Decimal("1.10"))
    job = graph.defs.resolve_job_def(CHARGEBACK_JOB)
    result = job.execute_in_process(
        instance=instance,
        partition_key=f"{day}|acme-prod",
        asset_selection=[dg.AssetKey("billing_lines"), dg.AssetKey("topic_outputs")],
        run_config=QUIET,
        tags={TENANT_TAG: "acme-prod"},
        raise_on_error=False,
    )
    assert not result.success
    assert not published.exists()
    assert "no longer current" in str(result.get_step_failure_events()[0].event_specific_data.error)
    with ChargebackDatabase.open(graph.db_path) as db:
        records = emission_records(db, ECO, "acme-prod", "csv", PIPELINE)
    assert [(r.date, r.status) for r in records] == [(day, "blocked")]


def test_failed_topic_outputs_are_requested_again_by_the_emission_retry_sensor(
    graph: Graph, instance
) -> None:
    """A directory where the day's topic CSV goes makes its publication fail: the chargeback is published,
    the topic outputs are recorded failed, and the emission retry sensor asks `topic_outputs` (only) for the
    day again, once per attempt, until a retry publishes it."""
    day = graph.newest - timedelta(days=1)
    key = f"{day}|acme-prod"
    blocker = graph.workdir / "csv" / f"topic_attr_acme-prod_{day}.csv"
    blocker.mkdir(parents=True)
    assert not graph.run("acme-prod", day, instance=instance, raise_on_error=False).success

    def topic_records() -> list[tuple[date, str, str, int]]:
        with ChargebackDatabase.open(graph.db_path) as db:
            records = emission_records(db, ECO, "acme-prod", pipeline=PIPELINE)
        return [(r.date, r.emitter_name, r.status, r.attempt_count) for r in records]

    assert topic_records() == [(day, "csv", "failed", 1), (day, "prometheus", "emitted", 1)]
    [request] = retry_requests(graph, instance)
    assert request.asset_selection == [dg.AssetKey("topic_outputs")]
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (key, key)
    assert request.run_key == f"emission_retry|{key}..{key}|topic_outputs|{day}:csv:1"

    assert not launch(graph, instance, request).success, "the directory is still in the way"
    [again] = retry_requests(graph, instance)
    assert again.run_key.endswith(f"{day}:csv:2"), "a new attempt is a new request"

    blocker.rmdir()
    assert launch(graph, instance, again).success
    assert topic_records() == [(day, "csv", "emitted", 3), (day, "prometheus", "emitted", 3)]
    with blocker.open(newline="") as handle:
        assert {row["topic"] for row in csv.DictReader(handle)} == {
            row.topic for row in stored(graph, "acme-prod", day)[2]
        }
    assert retry_requests(graph, instance) == [], "nothing owed any more"
