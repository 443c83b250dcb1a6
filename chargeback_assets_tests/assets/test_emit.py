"""The emit assets in the graph against the sandbox: outputs equal the stored rows, failures fail the
partition and are retried, and a partition that does not reconcile, or whose bill holds a malformed row, is
never published."""

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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
from chargeback_assets_tests.assets.test_graph import expected_bill
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


def key(day: date) -> str:
    return f"{day.isoformat()}|{TENANT}"


def served(graph: Graph, day: date) -> list[dict[str, Any]]:
    return graph.sandboxes[TENANT].bill.rows(day, day + timedelta(days=1))


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(failure.step_failure_data.user_failure_data.description)


def test_unreadable_amounts_charge_the_valid_lines_and_block_the_day_until_the_rows_parse(
    emitting: Graph, instance
) -> None:
    """A day served with amounts "12.5USD", null and missing: its valid lines are charged in full and
    reconcile, the three rows are kept charging nothing, billing_well_formed names each of them, and the
    day is blocked (not published, recorded as blocked) while the day before is published. Once the source
    serves rows that parse, the day is published."""
    good, bad = emitting.newest - timedelta(days=1), emitting.newest
    rows = served(emitting, bad)
    template = {**rows[0], "resource": {"id": "lkc-unreadable", "environment": {"id": "env-x"}}}
    missing = {k: v for k, v in template.items() if k != "amount"}
    emitting.sandboxes[TENANT].replace_costs(
        bad,
        [
            *rows,
            {**template, "id": "dlz-text", "amount": "12.5USD"},
            {**template, "id": "dlz-null", "amount": None},
            {**missing, "id": "dlz-missing"},
        ],
    )
    result = emitting.run(TENANT, good, bad, instance=instance, raise_on_error=False)
    assert not result.success

    billing = {m.partition: m.metadata for m in result.asset_materializations_for_node("billing_lines")}
    assert {k: billing[key(d)]["malformed_lines"].value for k, d in (("good", good), ("bad", bad))} == {
        "good": 0,
        "bad": 3,
    }
    bill = expected_bill(emitting.sandboxes[TENANT].org, bad)
    assert billing[key(bad)]["billed_exact"].value == f"{bill} USD"
    with ChargebackDatabase.open(emitting.db_path) as db:
        assert sum(r.amount for r in chargeback_rows_for_day(db, "confluent_cloud", TENANT, bad)) == bill
    checks = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert checks[("chargeback_reconciles", key(bad))].passed
    assert checks[("billing_well_formed", key(good))].passed
    verdict = checks[("billing_well_formed", key(bad))]
    assert not verdict.passed and verdict.metadata["count"].value == 3
    problems = verdict.metadata["problems"].value
    for named in ("dlz-text (", 'raw amount "12.5USD"', "dlz-null (", "raw amount null", "dlz-missing ("):
        assert named in problems, named
    assert problems.count(f"{bad} row dlz-") == 3

    assert {m.partition for m in result.asset_materializations_for_node("chargeback_csv")} == {key(good)}
    assert records(emitting, "files") == [(good.isoformat(), "emitted", 1), (bad.isoformat(), "blocked", 1)]
    assert not (emitting.workdir / "csv" / f"{TENANT}_{bad.isoformat()}.csv").exists()
    with ChargebackDatabase.open(emitting.db_path) as db:
        (blocked,) = emission_records(db, "confluent_cloud", TENANT, "files", PIPELINE, bad)
    assert (
        blocked.last_error.startswith("not published until the row parses")
        and "dlz-text" in blocked.last_error
    )
    assert f"{TENANT} {bad.isoformat()}: not published until the row parses" in step_failure(result)

    emitting.sandboxes[TENANT].revert_bill(bad)
    fixed = emitting.run(TENANT, bad, instance=instance)
    assert fixed.success
    assert {e.check_name: e.passed for e in fixed.get_asset_check_evaluations()}["billing_well_formed"]
    assert records(emitting, "files") == [(good.isoformat(), "emitted", 1), (bad.isoformat(), "emitted", 2)]
    assert (emitting.workdir / "csv" / f"{TENANT}_{bad.isoformat()}.csv").exists()


def test_a_repeated_row_a_stray_and_an_amount_of_1e30_each_cost_only_their_own_day(
    emitting: Graph, instance
) -> None:
    """Three days in one run: the first served with a row twice (overlapping pages), the second with a row
    dated 40 days earlier, the third with an amount of 1e30. Every day is gathered and charged its real
    bill; the copy and the stray are counted on the first day (the stray named by its check); only the third
    day is blocked, naming the row."""
    first = emitting.newest - timedelta(days=2)
    days = [first + timedelta(days=offset) for offset in range(3)]
    server = emitting.sandboxes[TENANT]
    copied, strayed, absurd = (served(emitting, day) for day in days)
    stray = {**strayed[0], "id": "dlz-stray", "start_date": (first - timedelta(days=40)).isoformat()}
    huge = {**absurd[0], "id": "dlz-huge", "amount": 1e30, "resource": {"id": "lkc-huge"}}
    server.replace_costs(days[0], [*copied, copied[0]])
    server.replace_costs(days[1], [*strayed, stray])
    server.replace_costs(days[2], [*absurd, huge])
    result = emitting.run(TENANT, days[0], days[-1], instance=instance, raise_on_error=False)
    assert not result.success

    billing = {m.partition: m.metadata for m in result.asset_materializations_for_node("billing_lines")}
    shown = {
        day: tuple(
            billing[key(day)][name].value for name in ("duplicate_lines", "stray_lines", "malformed_lines")
        )
        for day in days
    }
    assert shown == {days[0]: (1, 1, 0), days[1]: (0, 0, 0), days[2]: (0, 0, 1)}
    facts = {m.partition: m.metadata for m in result.asset_materializations_for_node("chargeback_facts")}
    for day in days:
        bill = expected_bill(server.org, day)
        assert (
            billing[key(day)]["billed_exact"].value
            == facts[key(day)]["allocated_exact"].value
            == f"{bill} USD"
        )

    checks = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert [checks[("billing_well_formed", key(day))].passed for day in days] == [False, True, False]
    assert all(checks[("chargeback_reconciles", key(day))].passed for day in days)
    stray_problem = checks[("billing_well_formed", key(days[0]))].metadata["problems"].value
    assert (
        stray_problem.startswith(f"{days[0]} stray row dlz-stray")
        and f"dated {first - timedelta(days=40)}" in stray_problem
    )
    huge_problem = checks[("billing_well_formed", key(days[2]))].metadata["problems"].value
    assert huge_problem == (
        f"{days[2]} row dlz-huge ({huge['line_type']} lkc-huge), raw amount 1E+30: "
        "amount exceeds max_line_amount 10000000"
    )

    published = {m.partition for m in result.asset_materializations_for_node("chargeback_csv")}
    assert published == {key(days[0]), key(days[1])}
    assert records(emitting, "files") == [
        (day.isoformat(), "blocked" if day == days[2] else "emitted", 1) for day in days
    ]
    description = step_failure(result)
    assert f"{TENANT} {days[2].isoformat()}: not published until the row parses" in description
    assert "dlz-huge" in description and days[0].isoformat() not in description
