"""The emit assets in the graph against the sandbox: outputs equal the stored rows, failures fail the
partition and are retried, and a partition that does not reconcile is never published."""

import csv
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.stages.emission import PIPELINE
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets_tests.graph import QUIET, Graph, running_graph

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
    metadata = result.asset_materializations_for_node("chargeback_csv")[0].metadata
    assert metadata["dates_emitted"].value == 2

    other = emitting.run("acme-staging", last, instance=instance)
    assert other.success
    note = other.asset_materializations_for_node("chargeback_csv")[0].metadata["tenants_without_emitter"]
    assert note.value == "no csv emitter configured, nothing to do: acme-staging"


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


def test_a_partition_that_does_not_reconcile_is_not_emitted(emitting: Graph, instance) -> None:
    day = emitting.newest - timedelta(days=2)
    assert emitting.run(TENANT, day, instance=instance).success
    output = emitting.workdir / "csv" / f"{TENANT}_{day.isoformat()}.csv"
    output.unlink()
    with sqlite3.connect(emitting.db_path) as conn:
        changed = conn.execute(
            "UPDATE chargeback_facts SET amount = '999999.0000' WHERE rowid = "
            "(SELECT rowid FROM chargeback_facts WHERE tenant_id = ? AND timestamp LIKE ? LIMIT 1)",
            (TENANT, f"{day.isoformat()}%"),
        ).rowcount
    assert changed == 1

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
    assert records(emitting, "files") == [(day.isoformat(), "emitted", 1)]  # from the first run only
