"""The removed-tenants command line: a tenant taken out of the config keeps its rows and outputs until they
are listed and purged on request, against real runs, a real SQLite file and a real Pushgateway."""

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import record_emission, record_outputs
from chargeback_assets.storage.tenants import stored_tenants
from chargeback_assets.tags import main as tags_main
from chargeback_assets.tenants import main
from chargeback_assets_tests.graph import Graph, running_graph
from chargeback_assets_tests.real_prometheus import free_port
from chargeback_assets_tests.real_pushgateway import running_pushgateway

KEPT, REMOVED = ("confluent_cloud", "acme-prod"), ("confluent_cloud", "acme-staging")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Runs a command line in this process (`main` by default) and captures what it printed."""

    def run(*args: str, command: Callable[[list[str]], int] = main) -> Outcome:
        try:
            code = command(list(args))
        except SystemExit as exit_:  # argparse refusing the command line
            code = int(exit_.code or 0)
        out = capsys.readouterr()
        return Outcome(code, out.out, out.err)

    return run


@dataclass
class Removed:
    """Both sandbox tenants emitted a day into shared output directories and a Pushgateway; then acme-staging
    was taken out of the config (`trimmed`)."""

    graph: Graph
    trimmed: Path
    pushgateway: str


@pytest.fixture
def removed(tmp_path: Path) -> Iterator[Removed]:
    with running_pushgateway(tmp_path) as pushgateway:
        emitters = [
            {"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}},
            {
                "type": "prometheus",
                "name": "metrics",
                "params": {"output_dir": str(tmp_path / "prom"), "pushgateway_url": pushgateway},
            },
        ]
        settings = {name: {"emitters": emitters} for name in ("acme-prod", "acme-staging")}
        with (
            running_graph(tmp_path, days=5, tenant_settings=settings) as graph,
            dg.instance_for_test() as instance,
        ):
            for tenant in ("acme-prod", "acme-staging"):
                assert graph.run(tenant, graph.newest, instance=instance).success
            document = yaml.safe_load(graph.config_path.read_text())
            del document["tenants"]["acme-staging"]
            trimmed = tmp_path / "trimmed.yaml"
            trimmed.write_text(yaml.safe_dump(document, sort_keys=False))
            yield Removed(graph, trimmed, pushgateway)


def stored(graph: Graph) -> dict:
    with ChargebackDatabase.open(graph.db_path) as db:
        return stored_tenants(db)


def outputs(root: Path, tenant: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.startswith(tenant))


def pushed_tenants(pushgateway: str) -> set[str]:
    text = requests.get(f"{pushgateway}/metrics", timeout=5).text
    return {tenant for tenant in ("acme-prod", "acme-staging") if f'tenant_id="{tenant}"' in text}


def test_runs_as_a_module(removed: Removed) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chargeback_assets.tenants", "--config", str(removed.trimmed), "removed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("confluent_cloud acme-staging: ")


def test_a_removed_tenant_is_listed_kept_by_a_dry_run_and_purged_with_apply(removed: Removed, cli) -> None:
    graph, config, root = removed.graph, str(removed.trimmed), removed.graph.workdir
    before = stored(graph)
    assert set(before) == {KEPT, REMOVED} and before[KEPT]["chargeback_facts"] > 0
    staging_files = outputs(root, "acme-staging")
    day_csv = f"acme-staging_{graph.newest.isoformat()}.csv"
    assert {f"csv/{day_csv}", "prom/acme-staging.om", "prom/acme-staging.om.d"} <= set(staging_files)
    assert pushed_tenants(removed.pushgateway) == {"acme-prod", "acme-staging"}

    listed = cli("--config", config, "removed")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0] == (
        f"confluent_cloud acme-staging: {sum(before[REMOVED].values())} rows ("
        + ", ".join(f"{table} {count}" for table, count in sorted(before[REMOVED].items()))
        + ")"
    )
    group = f"{removed.pushgateway}/metrics/job/chargeback/tenant_id/acme-staging"
    assert f"  metrics: {group} (Pushgateway group)" in lines
    assert f"  metrics: {root / 'prom' / 'acme-staging.om'}, with its fragments " in listed.stdout
    assert f"  files: {root / 'csv' / day_csv}" in lines
    assert "acme-prod" not in listed.stdout

    tag = ["--entity-type", "identity", "--entity-id", "sa-1", "--key", "team", "--value", "x"]
    refused = cli("--config", config, "set", "--tenant", "acme-staging", *tag, command=tags_main)
    assert refused.returncode == 2
    assert "was removed from the config but its data is still stored" in refused.stderr

    dry = cli("--config", config, "purge", "--tenant-id", "acme-staging")
    assert dry.returncode == 0
    assert dry.stdout.splitlines()[0] == "would delete " + lines[0]
    assert dry.stdout.splitlines()[-1] == "dry run: nothing was deleted; add --apply to delete"
    assert stored(graph) == before
    assert outputs(root, "acme-staging") == staging_files
    assert pushed_tenants(removed.pushgateway) == {"acme-prod", "acme-staging"}

    prod_files = outputs(root, "acme-prod")
    purged = cli("--config", config, "purge", "--tenant-id", "acme-staging", "--apply")
    assert purged.returncode == 0, purged.stderr
    assert f"removed metrics: {group}" in purged.stdout.splitlines()
    assert stored(graph) == {KEPT: before[KEPT]}
    assert outputs(root, "acme-staging") == []
    assert outputs(root, "acme-prod") == prod_files != []
    assert pushed_tenants(removed.pushgateway) == {"acme-prod"}
    assert cli("--config", config, "removed").stdout == (
        f"no tenant removed from the config has data in {graph.db_path}\n"
    )


GONE = (("confluent_cloud", "gone"), ("self_managed_kafka", "gone"))
PURGE_GONE = ("purge", "--tenant-id", "gone", "--apply", "--ecosystem")


@pytest.fixture
def leftovers(tmp_path: Path) -> Path:
    """A config with tenant `t-prod`; a database that also holds `gone` under two ecosystems."""
    db_path = tmp_path / "cb.db"
    tenant = {
        "ecosystem": "confluent_cloud",
        "tenant_id": "t-prod",
        "start_date": "2026-01-01",
        "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
    }
    config = tmp_path / "chargeback.yaml"
    config.write_text(yaml.safe_dump({"storage": {"path": str(db_path)}, "tenants": {"prod": tenant}}))
    now = datetime.now(UTC)
    with ChargebackDatabase.open(db_path) as db, db.transaction() as tx:
        for ecosystem, tenant_id in (("confluent_cloud", "t-prod"), *GONE):
            record_emission(tx, ecosystem, tenant_id, "files", "chargeback", date(2026, 3, 1), "emitted", now)
    return config


def test_a_configured_tenant_is_never_purged_and_unknown_or_ambiguous_ids_are_refused(
    leftovers: Path, cli
) -> None:
    config = str(leftovers)
    configured = cli("--config", config, "purge", "--tenant-id", "t-prod", "--apply")
    assert configured.returncode == 2 and "still configured (tenant 'prod')" in configured.stderr
    unknown = cli("--config", config, "purge", "--tenant-id", "nobody")
    assert unknown.returncode == 2
    assert "removed tenants: confluent_cloud gone, self_managed_kafka gone" in unknown.stderr
    ambiguous = cli("--config", config, "purge", "--tenant-id", "gone", "--apply")
    assert ambiguous.returncode == 2 and "choose one with --ecosystem" in ambiguous.stderr
    with ChargebackDatabase.open(leftovers.parent / "cb.db") as db:
        assert set(stored_tenants(db)) == {("confluent_cloud", "t-prod"), *GONE}

    chosen = cli("--config", config, *PURGE_GONE, "self_managed_kafka")
    assert chosen.returncode == 0
    with ChargebackDatabase.open(leftovers.parent / "cb.db") as db:
        assert set(stored_tenants(db)) == {("confluent_cloud", "t-prod"), GONE[0]}
    missing = cli("--config", str(leftovers.with_name("absent.yaml")), "removed")
    assert missing.returncode == 1 and "cannot load" in missing.stderr


def test_an_output_that_cannot_be_removed_stays_listed_and_the_rest_is_purged(leftovers: Path, cli) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/metrics/job/chargeback/tenant_id/gone"
    report = leftovers.parent / "gone_2026-03-01.csv"
    report.write_text("date\n")
    with ChargebackDatabase.open(leftovers.parent / "cb.db") as db, db.transaction() as tx:
        when = datetime.now(UTC)
        record_outputs(tx, "confluent_cloud", "gone", "files", [str(report)], when)
        record_outputs(tx, "confluent_cloud", "gone", "metrics", [unreachable], when)
    config = str(leftovers)

    purged = cli("--config", config, *PURGE_GONE, "confluent_cloud")
    assert purged.returncode == 1
    assert f"could not remove {unreachable}: the Pushgateway did not answer" in purged.stderr
    assert not report.exists()
    listed = cli("--config", config, "removed").stdout.splitlines()
    assert listed[:2] == [
        "confluent_cloud gone: 1 rows (published_outputs 1)",
        f"  metrics: {unreachable} (Pushgateway group)",
    ]
