"""What the Dagster UI shows is true per (date, tenant): tested through the real webserver and daemon.

Two backfills are launched as the UI launches them (GraphQL `launchPartitionBackfill`): 2 tenants × 10 days,
which Dagster runs as one run per tenant, and 2 tenants × 2 days, which it runs as one run per date over
both tenants. Every partition's metadata must then equal the queries of the README's "What each partition
shows" table, run on the chargeback database for that tenant and day; and each check shows its status per
partition. A fact tampered in one partition fails that partition's check and blocks only its emission.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargeback_assets.config import load_config
from chargeback_assets.stages.emission import PIPELINE
from chargeback_assets.storage.codec import day_bounds
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    DagsterServers,
    prepare_dagster_home,
    running_dagster,
)
from chargeback_assets_tests.graph import Graph, running_graph
from chargeback_assets_tests.webserver_queries import (
    check_statuses,
    latest_metadata,
    launch_backfill,
    launch_run,
    wait_for_backfill,
    wait_for_run,
)

pytestmark = pytest.mark.slow

TENANTS = ("acme-prod", "acme-staging")
DAYS = 14
ECOSYSTEM = "confluent_cloud"
CHECKS = {
    "chargeback_facts": (
        "chargeback_reconciles",
        "unallocated_share",
        "unattributed_share",
        "inventory_complete",
        "stages_consistent",
    ),
    "usage_metrics": ("metrics_fetched",),
    "billing_lines": ("billing_well_formed",),
    "topic_attribution": ("topic_attribution_reconciles",),
    "topic_metrics": ("topic_metrics_fetched",),
}
MONEY = ("billed", "allocated", "unallocated", "unattributed")
CONTRACT_ROW = re.compile(r"^\| `(?P<asset>[a-z_]+)` \| `(?P<key>[a-z_/]+)` \| (?P<definition>.*) \|$")


def readme_contract() -> dict[str, dict[str, str | None]]:
    """asset -> metadata key -> its SQL in the README's table (None where the README defines it in words)."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## What each partition shows", 1)[1].split("The checks, per partition", 1)[0]
    contract: dict[str, dict[str, str | None]] = {}
    for line in section.splitlines():
        match = CONTRACT_ROW.match(line)
        if match:
            sql = re.search(r"`(SELECT [^`]+)`", match["definition"])
            contract.setdefault(match["asset"], {})[match["key"]] = sql.group(1) if sql else None
    return contract


@dataclass
class Backfilled:
    graph: Graph
    servers: DagsterServers
    ten_days: list[date]
    two_days: list[date]
    runs: dict[str, list[dict[str, Any]]]

    @property
    def partitions(self) -> list[str]:
        return [f"{day.isoformat()}|{t}" for day in (*self.ten_days, *self.two_days) for t in TENANTS]


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    workdir = tmp_path_factory.mktemp("truth")
    emitters = {
        tenant: {
            "emitters": [
                {"type": "csv", "name": "csv", "params": {"output_dir": str(workdir / "csv")}},
                {"type": "prometheus", "name": "om", "params": {"output_dir": str(workdir / "om")}},
                {"type": "focus", "name": "focus", "params": {"output_dir": str(workdir / "focus")}},
            ]
        }
        for tenant in TENANTS
    }
    with running_graph(workdir, days=DAYS, tenant_settings=emitters) as graph:
        home = prepare_dagster_home(workdir / "dagster_home")
        with running_dagster(home, graph.config_path, daemon=True) as servers:
            first = graph.newest - timedelta(days=DAYS - 1)
            ten_days = [first + timedelta(days=offset) for offset in range(10)]
            two_days = [graph.newest - timedelta(days=1), graph.newest]
            runs = {}
            for name, days in (("ten_days", ten_days), ("two_days", two_days)):
                keys = [f"{day.isoformat()}|{tenant}" for day in days for tenant in TENANTS]
                runs[name] = wait_for_backfill(servers, launch_backfill(servers, PARTITIONED, keys))
            yield Backfilled(graph, servers, ten_days, two_days, runs)


def range_of(run: dict[str, Any]) -> tuple[str, str]:
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    return tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]


def test_dagster_splits_the_two_backfills_by_tenant_and_by_date(backfilled: Backfilled) -> None:
    """The shapes this file is about: the first backfill one run per tenant, the second one per date."""
    ten, two = backfilled.ten_days, backfilled.two_days
    assert all(run["status"] == "SUCCESS" for runs in backfilled.runs.values() for run in runs)
    assert sorted(range_of(run) for run in backfilled.runs["ten_days"]) == [
        (f"{ten[0].isoformat()}|{tenant}", f"{ten[-1].isoformat()}|{tenant}") for tenant in TENANTS
    ]
    assert sorted(range_of(run) for run in backfilled.runs["two_days"]) == [
        (f"{day.isoformat()}|{TENANTS[0]}", f"{day.isoformat()}|{TENANTS[-1]}") for day in two
    ]


def query(db: sqlite3.Connection, sql: str, tenant: str, day: date) -> list[tuple[Any, ...]]:
    start, end = day_bounds(day)
    parameters = {
        "ecosystem": ECOSYSTEM,
        "tenant_id": tenant,
        "day": day.isoformat(),
        "start": start,
        "end": end,
    }
    return db.execute(sql, parameters).fetchall()


def same(shown: tuple[str, Any], expected: Any) -> bool:
    kind, value = shown
    if kind == "FloatMetadataEntry":
        return math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-6)
    if kind == "BoolMetadataEntry":
        return value == bool(expected)
    return value == expected


def test_every_partition_shows_what_the_readme_queries_give(backfilled: Backfilled) -> None:
    contract = readme_contract()
    assert set(contract) == set(PARTITIONED)
    db = sqlite3.connect(backfilled.graph.db_path)
    tenants = load_config(backfilled.graph.config_path).tenants
    settle_days = {name: tenant.settle_days for name, tenant in tenants.items()}
    checked = 0
    try:
        for asset in PARTITIONED:
            shown = latest_metadata(backfilled.servers, asset, backfilled.partitions)
            assert sorted(shown) == sorted(backfilled.partitions), asset
            for key, event in shown.items():
                day_text, tenant = key.split("|")
                day = date.fromisoformat(day_text)
                entries = event["entries"]
                documented = set(contract[asset]) | {"outputs"}
                documented |= {f"{name}_exact" for name in MONEY}
                assert set(entries) <= documented, (asset, key, sorted(set(entries) - documented))
                for name, sql in contract[asset].items():
                    if sql is None or name == "top_identities":
                        continue
                    ((expected,),) = query(db, sql, tenant, day)
                    assert same(entries[name], expected), (asset, key, name, entries[name], expected)
                    checked += 1
                newest_settled = datetime.now(UTC).date() - timedelta(days=1 + settle_days[tenant])
                assert entries["settled"][1] == (day <= newest_settled), (asset, key, entries["settled"])
                for name in MONEY:
                    if name in entries:
                        exact = entries[f"{name}_exact"][1]
                        assert exact.endswith(" USD") and float(exact.split()[0]) == entries[name][1]
                if asset == "chargeback_facts":
                    expected_top = query(db, contract[asset]["top_identities"], tenant, day)
                    records = [json.loads(r) for r in entries["top_identities"][1]["records"]]
                    assert [r["identity_id"] for r in records] == [who for who, _ in expected_top], key
                    for record, (_, total) in zip(records, expected_top, strict=True):
                        assert math.isclose(float(record["amount"]), total, abs_tol=1e-6)
                if asset == "chargeback_csv":
                    with Path(entries["path"][1]).open(newline="", encoding="utf-8") as output:
                        assert len(list(csv.DictReader(output))) == entries["dagster/row_count"][1]
                    assert entries["status"][1] == "csv: emitted"
    finally:
        db.close()
    assert checked > len(backfilled.partitions) * 20


def test_every_check_shows_its_verdict_on_every_partition(backfilled: Backfilled) -> None:
    """Every check passes on every partition, but `unattributed_share`, which passes exactly where the
    README's `unattributed` over `billed` is within the tenant's `unattributed_warn_fraction`."""
    facts = readme_contract()["chargeback_facts"]
    tenants = load_config(backfilled.graph.config_path).tenants
    db = sqlite3.connect(backfilled.graph.db_path)
    try:
        unattributed_passes = {}
        for key in backfilled.partitions:
            day_text, tenant = key.split("|")
            day = date.fromisoformat(day_text)
            ((unattributed,),) = query(db, facts["unattributed"], tenant, day)
            ((billed,),) = query(db, facts["billed"], tenant, day)
            limit = float(tenants[tenant].unattributed_warn_fraction)
            unattributed_passes[key] = unattributed <= billed * limit
    finally:
        db.close()
    for asset, names in CHECKS.items():
        statuses = check_statuses(backfilled.servers, asset)
        for name in names:
            expected = dict.fromkeys(backfilled.partitions, "SUCCEEDED")
            if name == "unattributed_share":
                expected = {k: "SUCCEEDED" if ok else "FAILED" for k, ok in unattributed_passes.items()}
            assert statuses[name] == expected, (asset, name)


def test_a_tampered_partition_fails_its_check_and_blocks_only_its_own_emission(
    backfilled: Backfilled,
) -> None:
    tenant, days = "acme-prod", backfilled.two_days
    bad = days[0]
    with sqlite3.connect(backfilled.graph.db_path) as conn:
        conn.execute(
            "UPDATE chargeback_facts SET amount = '123456.0000' WHERE rowid = (SELECT rowid FROM "
            "chargeback_facts WHERE tenant_id = ? AND timestamp LIKE ? LIMIT 1)",
            (tenant, f"{bad.isoformat()}%"),
        )
    csv_dir = backfilled.graph.workdir / "csv"
    assert all((csv_dir / f"{tenant}_{day.isoformat()}.csv").exists() for day in days)

    run_id = launch_run(
        backfilled.servers,
        ["chargeback_csv", "chargeback_prometheus"],
        [("chargeback_facts", "chargeback_reconciles")],
        f"{days[0].isoformat()}|{tenant}",
        f"{days[-1].isoformat()}|{tenant}",
    )
    assert wait_for_run(backfilled.servers, run_id) == "FAILURE"

    reconciles = check_statuses(backfilled.servers, "chargeback_facts")["chargeback_reconciles"]
    bad_key = f"{bad.isoformat()}|{tenant}"
    assert {key for key, status in reconciles.items() if status != "SUCCEEDED"} == {bad_key}
    assert reconciles[bad_key] == "FAILED"

    good_key = f"{days[1].isoformat()}|{tenant}"
    for asset in ("chargeback_csv", "chargeback_prometheus"):
        shown = latest_metadata(backfilled.servers, asset, [bad_key, good_key])
        assert shown[good_key]["runId"] == run_id, asset
        assert shown[bad_key]["runId"] != run_id, asset  # still the backfill's, from before the tamper
    assert (csv_dir / f"{tenant}_{days[1].isoformat()}.csv").exists()
    assert not (csv_dir / f"{tenant}_{bad.isoformat()}.csv").exists()  # withdrawn by the blocked run
    with ChargebackDatabase.open(backfilled.graph.db_path) as db:
        for emitter in ("csv", "om"):
            (record,) = emission_records(db, ECOSYSTEM, tenant, emitter, pipeline=PIPELINE, day=bad)
            assert record.status == "blocked", emitter
