"""deploy/dagster.yaml: the Dagster instance on PostgreSQL (dagster-postgres), with the chargeback database on
the same PostgreSQL server (`storage.url`, its password through `${VAR}`), run by the real
dagster-webserver and dagster-daemon.

A UI backfill over 3 days × 2 tenants is split by Dagster into one run per tenant; with the shipped queue
both run at once, each in its own worker process started by the default launcher, each step in that
process (`in_process_executor`), both writing the chargeback database. Dagster's runs, events and
schedules are read back from PostgreSQL; the verdict on "at once" comes from the run records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.launcher import DefaultRunLauncher

from chargeback_assets.config import load_config
from chargeback_assets.launcher import WorkerCheckingRunLauncher
from chargeback_assets.storage.database import open_database
from chargeback_assets.storage.transfer import contents
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    open_instance,
    prepare_dagster_home,
    repo_instance_settings,
    running_dagster,
)
from chargeback_assets_tests.graph import running_graph
from chargeback_assets_tests.real_postgres import PASSWORD, USER, PostgresServer, running_postgres
from chargeback_assets_tests.test_concurrency import max_overlap
from chargeback_assets_tests.test_run_lanes import computing_span, configured, worker_pid
from chargeback_assets_tests.webserver_queries import launch_backfill, wait_for_backfill

DEPLOY_DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
TENANTS = ("acme-prod", "acme-staging")
IN_PROCESS = "Executing steps in process"


def deploy_instance_settings() -> dict[str, Any]:
    return yaml.safe_load(DEPLOY_DAGSTER_YAML.read_text())


def test_the_postgres_instance_is_the_repo_instance_with_postgres_storage_and_no_inline_credential() -> None:
    deploy = deploy_instance_settings()
    repo = repo_instance_settings()
    assert repo.pop("event_log_storage")["module"] == "chargeback_assets.event_log"  # SQLite only
    assert "event_log_storage" not in deploy  # it would take the events out of PostgreSQL
    assert {key: value for key, value in deploy.items() if key != "storage"} == repo
    [(backend, settings)] = deploy["storage"].items()
    assert backend == "postgres"
    connection = settings["postgres_db"]
    assert {"hostname", "username", "password", "db_name"} <= set(connection)
    assert connection.pop("scheme") == "postgresql+psycopg2"  # the driver dagster-postgres is built on
    assert all(value == {"env": value.get("env")} for value in connection.values()), connection


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def instance_environment(server: PostgresServer, database: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads."""
    return {
        "DAGSTER_PG_HOST": server.host,
        "DAGSTER_PG_PORT": str(server.port),
        "DAGSTER_PG_USER": USER,
        "DAGSTER_PG_PASSWORD": PASSWORD,
        "DAGSTER_PG_DB": database,
    }


@pytest.mark.slow
@pytest.mark.postgres
def test_a_two_tenant_backfill_runs_both_tenants_at_once_on_the_shared_instance(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres.create_database("dagster")
    chargeback_url = postgres.create_database("chargeback").replace(
        f":{PASSWORD}@", ":${CHARGEBACK_DB_PASSWORD}@"
    )
    for name, value in instance_environment(postgres, "dagster").items():
        monkeypatch.setenv(name, value)  # this process migrates the instance; the servers inherit them
    monkeypatch.setenv("CHARGEBACK_DB_PASSWORD", PASSWORD)
    home = prepare_dagster_home(tmp_path / "dagster_home", deploy_instance_settings())
    with running_graph(tmp_path, days=3) as graph:
        paced = configured(graph.config_path, tmp_path / "paced.yaml", slots=4, request_interval_s=0.1)
        config = on_postgres(paced, chargeback_url)
        days = [graph.newest - timedelta(days=age) for age in (2, 1, 0)]
        keys = [f"{day}|{tenant}" for day in days for tenant in TENANTS]
        with running_dagster(home, config, daemon=True) as servers, open_instance(home) as instance:
            runs = wait_for_backfill(servers, launch_backfill(servers, PARTITIONED, keys))
            run_ids = [run["runId"] for run in runs]
            records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
            spans = [computing_span(instance, run_id) for run_id in run_ids]
            logs = {run_id: [entry.user_message for entry in instance.all_logs(run_id)] for run_id in run_ids}
            workers = {run_id: worker_pid(instance, run_id) for run_id in run_ids}
            storages = {
                type(instance.run_storage).__name__,
                type(instance.event_log_storage).__name__,
                type(instance.schedule_storage).__name__,
            }
            launcher = instance.run_launcher
            facts = instance.get_materialized_partitions(dg.AssetKey("chargeback_facts"))
        with open_database(load_config(config).storage) as db:
            stored = contents(db)

    assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
    assert isinstance(launcher, WorkerCheckingRunLauncher) and isinstance(launcher, DefaultRunLauncher)
    assert {record.dagster_run.status for record in records} == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(tenant_of(run) for run in runs) == sorted(TENANTS), runs
    assert all(pid is not None for pid in workers.values()), "each run ran in a worker process"
    assert len(set(workers.values())) == 2
    assert all(any(message.startswith(IN_PROCESS) for message in logs[run_id]) for run_id in run_ids)
    assert max_overlap([(r.start_time, r.end_time) for r in records]) == 2
    assert max_overlap(spans) == 2, f"both tenants computed at once: {spans}"
    assert facts == set(keys)
    charged_days = {f"{day}|{tenant}" for _, tenant, day in stored.charged}
    assert charged_days == set(keys), "both runs wrote their days to the PostgreSQL chargeback database"
    assert not graph.db_path.exists(), "no SQLite file was made"


def on_postgres(config: Path, url: str) -> Path:
    """The config with its chargeback database on PostgreSQL (`storage.url`) instead of a SQLite file."""
    document = yaml.safe_load(config.read_text())
    document["storage"] = {"url": url}
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def tenant_of(run: dict[str, Any]) -> str:
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    start = tags["dagster/asset_partition_range_start"]
    assert start.split("|")[1] == tags["dagster/asset_partition_range_end"].split("|")[1], tags
    return start.split("|")[1]
