"""The emit assets in the graph against the sandbox: outputs equal the stored rows, failures fail the
partition and are retried, and a partition that does not reconcile is never published."""

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests

from chargeback_assets.engine.models import day_start
from chargeback_assets.stages.emission import PIPELINE
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets.tags import main as tags_cli
from chargeback_assets_tests.emitters.samples import HOSTILE, HOSTILE_AS_READ, HOSTILE_LABEL
from chargeback_assets_tests.graph import QUIET, Graph, running_graph
from chargeback_assets_tests.real_prometheus import backfilled_prometheus
from chargeback_assets_tests.real_pushgateway import running_pushgateway

TENANT = "acme-prod"


@pytest.fixture
def emitting(tmp_path: Path) -> Iterator[Graph]:
    emitters = [
        {"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}},
        {"type": "prometheus", "name": "metrics", "params": {"output_dir": str(tmp_path / "prom")}},
    ]
    with running_graph(tmp_path, days=10, tenant_settings={TENANT: {"emitters": emitters}}) as graph:
        yield graph


def records(graph: Graph, emitter: str) -> list[tuple[str, str, int]]:
    with ChargebackDatabase.open(graph.db_path) as db:
        return [
            (r.date.isoformat(), r.status, r.attempt_count)
            for r in emission_records(db, "confluent_cloud", TENANT, emitter, PIPELINE)
        ]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_materialized_partition_is_emitted_to_both_outputs(emitting: Graph, instance) -> None:
    first, last = emitting.newest - timedelta(days=1), emitting.newest
    result = emitting.run(TENANT, first, last, instance=instance)
    assert result.success
    with ChargebackDatabase.open(emitting.db_path) as db:
        for day in (first, last):
            stored = chargeback_rows_for_day(db, "confluent_cloud", TENANT, day)
            cells = read_csv(emitting.workdir / "csv" / f"{TENANT}_{day.isoformat()}.csv")
            assert len(cells) == len(stored) > 0
            assert sum(Decimal(c["amount"]) for c in cells) == sum(r.amount for r in stored)
    om = (emitting.workdir / "prom" / f"{TENANT}.om").read_text()
    assert om.endswith("# EOF\n")
    for record in ("files", "metrics"):
        assert records(emitting, record) == [
            (first.isoformat(), "emitted", 1),
            (last.isoformat(), "emitted", 1),
        ]
    by_partition = {m.partition: m.metadata for m in result.asset_materializations_for_node("chargeback_csv")}
    assert sorted(by_partition) == [f"{day.isoformat()}|{TENANT}" for day in (first, last)]
    for day in (first, last):
        metadata = by_partition[f"{day.isoformat()}|{TENANT}"]
        path = emitting.workdir / "csv" / f"{TENANT}_{day.isoformat()}.csv"
        assert metadata["path"] == dg.MetadataValue.path(str(path))
        assert metadata["dagster/row_count"].value == len(read_csv(path))
        assert metadata["status"].value == "files: emitted"

    other = emitting.run("acme-staging", last, instance=instance)
    assert other.success
    (materialization,) = other.asset_materializations_for_node("chargeback_csv")
    assert materialization.metadata["status"].value == "nothing to do: no csv emitter configured"


def test_a_failed_emission_fails_the_partition_and_the_next_materialization_retries(
    emitting: Graph, instance
) -> None:
    day = emitting.newest
    (emitting.workdir / "csv").write_text("a file where the output directory should be")
    failed = emitting.run(TENANT, day, instance=instance, raise_on_error=False)
    assert not failed.success
    failure = next(
        e for e in failed.all_events if e.event_type_value == "STEP_FAILURE" and "csv" in e.step_key
    )
    message = str(failure.step_failure_data.user_failure_data.description)
    assert f"tenant {TENANT}, date {day.isoformat()}: emitter files failed: cannot write" in message
    assert records(emitting, "files") == [(day.isoformat(), "failed", 1)]

    (emitting.workdir / "csv").unlink()
    assert emitting.run(TENANT, day, instance=instance).success
    assert records(emitting, "files") == [(day.isoformat(), "emitted", 2)]


def tamper(graph: Graph, day) -> None:
    """Change one stored fact of the day behind the pipeline's back, so the day no longer reconciles."""
    with sqlite3.connect(graph.db_path) as conn:
        changed = conn.execute(
            "UPDATE chargeback_facts SET amount = '999999.0000' WHERE rowid = "
            "(SELECT rowid FROM chargeback_facts WHERE tenant_id = ? AND timestamp LIKE ? LIMIT 1)",
            (TENANT, f"{day.isoformat()}%"),
        ).rowcount
    assert changed == 1


def test_a_partition_that_does_not_reconcile_is_not_emitted(emitting: Graph, instance) -> None:
    day = emitting.newest - timedelta(days=2)
    assert emitting.run(TENANT, day, instance=instance).success
    output = emitting.workdir / "csv" / f"{TENANT}_{day.isoformat()}.csv"
    assert output.exists()
    tamper(emitting, day)

    check = dg.AssetCheckKey(dg.AssetKey("chargeback_facts"), "chargeback_reconciles")
    job = dg.define_asset_job(
        "publish_only", selection=dg.AssetSelection.assets("chargeback_csv") | dg.AssetSelection.checks(check)
    )
    defs = dg.Definitions.merge(emitting.defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("publish_only").execute_in_process(
        instance=instance, partition_key=f"{day.isoformat()}|{TENANT}", run_config=QUIET, raise_on_error=False
    )
    assert not result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"chargeback_reconciles": False}
    assert result.asset_materializations_for_node("chargeback_csv") == []
    assert not output.exists()
    assert records(emitting, "files") == [(day.isoformat(), "blocked", 2)]


def test_one_partition_that_does_not_reconcile_blocks_only_itself(emitting: Graph, instance) -> None:
    """Three days in one run; the middle one is tampered after its calculation. The check fails on that
    partition alone, the other two are published again, and the blocked one's earlier output is withdrawn and
    it gets no materialization."""
    first = emitting.newest - timedelta(days=2)
    days = [first + timedelta(days=offset) for offset in range(3)]
    assert emitting.run(TENANT, first, emitting.newest, instance=instance).success
    bad = days[1]
    tamper(emitting, bad)

    check = dg.AssetCheckKey(dg.AssetKey("chargeback_facts"), "chargeback_reconciles")
    job = dg.define_asset_job(
        "publish_range",
        selection=dg.AssetSelection.assets("chargeback_csv") | dg.AssetSelection.checks(check),
    )
    defs = dg.Definitions.merge(emitting.defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("publish_range").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": f"{first.isoformat()}|{TENANT}",
            "dagster/asset_partition_range_end": f"{emitting.newest.isoformat()}|{TENANT}",
        },
        run_config=QUIET,
        raise_on_error=False,
    )
    assert not result.success
    verdicts = {e.partition: e.passed for e in result.get_asset_check_evaluations()}
    assert verdicts == {f"{day.isoformat()}|{TENANT}": day != bad for day in days}
    published = {m.partition for m in result.asset_materializations_for_node("chargeback_csv")}
    assert published == {f"{day.isoformat()}|{TENANT}" for day in days if day != bad}
    for day in days:
        assert (emitting.workdir / "csv" / f"{TENANT}_{day.isoformat()}.csv").exists() == (day != bad)
    assert records(emitting, "files") == [
        (day.isoformat(), "blocked" if day == bad else "emitted", 2) for day in days
    ]
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert (
        f"{TENANT} {bad.isoformat()}: not published"
        in failure.step_failure_data.user_failure_data.description
    )


def om_totals(graph: Graph) -> dict[int, Decimal]:
    """Timestamp -> sum of the chargeback_amount samples (exact decimal text) in the tenant's OpenMetrics
    file."""
    totals: dict[int, Decimal] = {}
    for line in (graph.workdir / "prom" / f"{TENANT}.om").read_text().splitlines():
        if line.startswith("chargeback_amount{"):
            value, stamp = line.rsplit(" ", 2)[1:]
            totals[int(stamp)] = totals.get(int(stamp), Decimal(0)) + Decimal(value)
    return totals


def test_a_day_emptied_at_the_source_is_withdrawn_and_a_restated_day_replaced(
    emitting: Graph, instance
) -> None:
    """The bill of a published day is emptied at the source: the rerun withdraws its CSV and its samples (the
    other day's stay) and records it; the bill comes back restated: the outputs hold the new rows again."""
    kept, emptied = emitting.newest - timedelta(days=1), emitting.newest
    assert emitting.run(TENANT, kept, emptied, instance=instance).success
    output = emitting.workdir / "csv" / f"{TENANT}_{emptied.isoformat()}.csv"
    stamp = {day: int(day_start(day).timestamp()) for day in (kept, emptied)}
    assert len(read_csv(output)) > 0 and om_totals(emitting)[stamp[emptied]] > 0

    emitting.sandboxes[TENANT].empty_bill(emptied)
    result = emitting.run(TENANT, emptied, instance=instance)
    with ChargebackDatabase.open(emitting.db_path) as db:
        assert chargeback_rows_for_day(db, "confluent_cloud", TENANT, emptied) == []
    assert not output.exists()
    assert (emitting.workdir / "csv" / f"{TENANT}_{kept.isoformat()}.csv").exists()
    assert set(om_totals(emitting)) == {stamp[kept]}
    for emitter in ("files", "metrics"):
        assert records(emitting, emitter)[-1] == (emptied.isoformat(), "withdrawn", 2)
    (materialization,) = result.asset_materializations_for_node("chargeback_csv")
    assert materialization.metadata["dagster/row_count"].value == 0
    assert materialization.metadata["status"].value == (
        f"files: withdrawn (no chargeback rows; earlier output withdrawn: {output})"
    )

    emitting.sandboxes[TENANT].revert_bill(emptied)
    emitting.sandboxes[TENANT].revise_bill(emptied, Decimal("1.25"))
    result = emitting.run(TENANT, emptied, instance=instance)
    with ChargebackDatabase.open(emitting.db_path) as db:
        stored = chargeback_rows_for_day(db, "confluent_cloud", TENANT, emptied)
    cells = read_csv(output)
    assert len(cells) == len(stored) > 0
    assert sum(Decimal(c["amount"]) for c in cells) == sum(r.amount for r in stored)
    assert om_totals(emitting)[stamp[emptied]] == sum(r.amount for r in stored)
    assert records(emitting, "files")[-1] == (emptied.isoformat(), "emitted", 3)

    assert emitting.run(TENANT, emptied, instance=instance).success
    with ChargebackDatabase.open(emitting.db_path) as db:
        (record,) = emission_records(db, "confluent_cloud", TENANT, "files", PIPELINE, emptied)
    assert (record.status, record.attempt_count) == ("emitted", 4)
    assert record.last_error.startswith("replaced the output emitted at ")


def test_a_hostile_display_name_and_tags_reach_every_output_intact(tmp_path: Path, instance) -> None:
    """A service account renamed to control characters, a formula and delimiters, tagged with `;` and `=`,
    through the graph into CSV (read by csv and pandas), OpenMetrics (promtool, Prometheus) and a real
    Pushgateway."""
    with running_pushgateway(tmp_path) as pushgateway:
        emitters = [
            {"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}},
            {
                "type": "prometheus",
                "name": "metrics",
                "params": {"output_dir": str(tmp_path / "prom"), "pushgateway_url": pushgateway},
            },
        ]
        with running_graph(tmp_path, days=10, tenant_settings={TENANT: {"emitters": emitters}}) as graph:
            sandbox = graph.sandboxes[TENANT]
            account = sandbox.org.objects["api_keys"][0]["spec"]["owner"]["id"]
            sandbox.org.rename(account, HOSTILE)
            team = "pay;ments=1"
            tag = ["--entity-type", "identity", "--entity-id", account, "--key", "team", "--value", team]
            assert tags_cli(["--config", str(graph.config_path), "set", "--tenant", TENANT, *tag]) == 0
            days = [graph.newest - timedelta(days=1), graph.newest]
            result = graph.run(TENANT, days[0], days[1], instance=instance)
            assert result.success
            assert len(result.asset_materializations_for_node("chargeback_prometheus")) == 2
            for day in days:
                path = tmp_path / "csv" / f"{TENANT}_{day.isoformat()}.csv"
                by_pandas = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
                for cells in (read_csv(path), by_pandas):
                    charged = [c for c in cells if c["identity_id"] == account]
                    assert charged, f"{account} has no rows on {day}"
                    assert {c["identity_name"] for c in charged} == {"'" + HOSTILE}
                    assert {json.loads(c["tags"])["team"] for c in charged} == {team}
            served = requests.get(f"{pushgateway}/metrics", timeout=5).text.split("\n")
            assert any(
                line.startswith("chargeback_identity_info{")
                and f'identity_id="{account}"' in line
                and f'identity_name="{HOSTILE_LABEL}"' in line
                for line in served
            )
            with backfilled_prometheus(tmp_path, tmp_path / "prom" / f"{TENANT}.om") as url:
                query = f'chargeback_identity_info{{identity_id="{account}"}}'
                series = [
                    requests.get(
                        f"{url}/api/v1/query",
                        params={"query": query, "time": datetime.combine(day, time(), UTC).timestamp()},
                        timeout=10,
                    ).json()["data"]["result"]
                    for day in days
                ]
    assert [[s["metric"]["identity_name"] for s in found] for found in series] == [[HOSTILE_AS_READ]] * 2
