"""Issue 16: the chargeback database on PostgreSQL against SQLite, in one sitting, and runs side by side.

1. The 30-day single-run backfill of the `large` organization (`bench.backfill.backfill`), on SQLite and on
   PostgreSQL in turn (SQLite, PostgreSQL, SQLite, PostgreSQL: the machine's load falls on both alike),
   each on an empty database and a fresh Dagster instance. Only the chargeback database differs.
2. 4 tenants × 30 days on PostgreSQL, 2 runs at once: four tenants of the same organization (each its own
   `tenant_id`), one single-run backfill each, executed by two worker processes that share one Dagster
   instance on PostgreSQL (deploy/dagster.yaml's storage), as two run workers of a shared instance would.

The PostgreSQL server is the tests' throwaway one (chargeback_assets_tests/real_postgres.py: a local
`initdb` cluster, fsync off), so the figures compare the databases' work, not a network or a disk flush.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from bench.backfill import DAYS, backfill
from bench.harness import median, megabytes, timed
from bench.instance import repo_instance
from bench.sandbox import RemoteSandbox, remote_sandbox
from chargeback_assets.definitions import build_definitions
from chargeback_assets.sandbox.tenants import write_config
from chargeback_assets_tests.real_postgres import PASSWORD, USER, PostgresServer, running_postgres

ROUNDS = 2
TENANT = "large"
TARGET_RATIO = 1.5
PARALLEL_TENANTS = 4
WORKERS = 2
DEPLOY_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"


def one_backfill(
    sandbox: RemoteSandbox, workdir: Path, storage: Path | Mapping[str, str], first: date, last: date
) -> float:
    config = write_config(workdir / "chargeback.yaml", {TENANT: sandbox.tenant}, storage)
    defs = build_definitions(str(config))
    with repo_instance(workdir) as instance:
        seconds, _ = timed(lambda: backfill(defs, instance, first, last, TENANT))
    return seconds


def side_by_side(
    sandbox: RemoteSandbox, server: PostgresServer, workdir: Path, first: date, last: date
) -> tuple[float, list[tuple[str, float, float]]]:
    """Wall seconds of 4 tenants' backfills run by 2 workers, and each run's (tenant, start, end)."""
    tenants = {
        f"{TENANT}-{n}": {**sandbox.tenant, "tenant_id": f"sandbox-{TENANT}-{n}"}
        for n in range(1, PARALLEL_TENANTS + 1)
    }
    storage = {"url": server.create_database("bench_parallel")}
    config = write_config(workdir / "chargeback.yaml", tenants, storage, max_parallel_tenants=WORKERS)
    home = shared_instance(server, workdir / "dagster_home")
    context = multiprocessing.get_context("spawn")
    queue, done = context.Queue(), context.Queue()
    for name in tenants:
        queue.put(name)
    workers = [
        context.Process(target=_worker, args=(str(config), str(home), first, last, queue, done))
        for _ in range(WORKERS)
    ]
    for _ in workers:
        queue.put(None)
    started = datetime.now(UTC).timestamp()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = datetime.now(UTC).timestamp() - started
    runs = [done.get() for _ in tenants]
    failed = [name for name, _, _, ok in runs if not ok]
    if failed or any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"side-by-side backfills failed for {failed or 'a worker'}")
    return wall, [(name, start, end) for name, start, end, _ in runs]


def shared_instance(server: PostgresServer, home: Path) -> Path:
    """A DAGSTER_HOME whose runs, events and schedules are in PostgreSQL (deploy/dagster.yaml's storage)."""
    os.environ.update(
        DAGSTER_PG_HOST=server.host,
        DAGSTER_PG_PORT=str(server.port),
        DAGSTER_PG_USER=USER,
        DAGSTER_PG_PASSWORD=PASSWORD,
        DAGSTER_PG_DB=server.create_database("bench_dagster").rsplit("/", 1)[1],
    )
    home.mkdir(parents=True)
    storage = yaml.safe_load(DEPLOY_DAGSTER_YAML.read_text())["storage"]
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage}))
    with dg.DagsterInstance.from_config(str(home)):  # migrate once, before two processes race to
        pass
    return home


def _worker(config: str, home: str, first: date, last: date, queue: Any, done: Any) -> None:
    """A run worker: takes tenants off the queue and runs each one's backfill until told to stop."""
    defs = build_definitions(config)
    with dg.DagsterInstance.from_config(home) as instance:
        while (tenant := queue.get()) is not None:
            start = datetime.now(UTC).timestamp()
            try:
                backfill(defs, instance, first, last, tenant)
                ok = True
            except Exception:  # reported by the parent, which waits for every tenant's answer
                ok = False
            done.put((tenant, start, datetime.now(UTC).timestamp(), ok))


def run() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    last, first = today - timedelta(days=1), today - timedelta(days=DAYS)
    times: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    with remote_sandbox(today, DAYS + 1, first) as sandbox, running_postgres() as server:
        for attempt in range(ROUNDS):
            for backend in times:
                with tempfile.TemporaryDirectory(prefix=f"bench-pg-{backend}{attempt}-") as workdir:
                    storage = (
                        Path(workdir) / "chargeback.db"
                        if backend == "sqlite"
                        else {"url": server.create_database(f"bench_{attempt}")}
                    )
                    times[backend].append(one_backfill(sandbox, Path(workdir), storage, first, last))
        with tempfile.TemporaryDirectory(prefix="bench-pg-parallel-") as workdir:
            wall, runs = side_by_side(sandbox, server, Path(workdir), first, last)
        server_rss = sandbox.peak_rss_kib()
    sqlite_s, postgres_s = median(times["sqlite"]), median(times["postgres"])
    ratio = postgres_s / sqlite_s
    run_seconds = [end - start for _, start, end in runs]
    origin = min(start for _, start, _ in runs)
    return {
        "title": f"{DAYS}-day backfill on PostgreSQL",
        "median_s": postgres_s,
        "runs": ROUNDS,
        "figures": [
            f"SQLite {sqlite_s:.2f} s",
            f"PostgreSQL/SQLite {ratio:.2f}x (target < {TARGET_RATIO}x: "
            f"{'OK' if ratio < TARGET_RATIO else 'MISSED'})",
        ],
        "details": [
            "each backfill (s): "
            + "; ".join(f"{backend} {listed(seconds)}" for backend, seconds in times.items()),
            f"{PARALLEL_TENANTS} tenants x {DAYS} days on PostgreSQL, {WORKERS} runs at once on a shared "
            f"PostgreSQL Dagster instance: {wall:.2f} s wall, runs {median(run_seconds):.2f} s median, "
            f"{sum(run_seconds):.2f} s together ({sum(run_seconds) / wall:.2f} runs in progress on average)",
            "runs (s from the first start): "
            + "; ".join(
                f"{name} {start - origin:.1f}..{end - origin:.1f}" for name, start, end in sorted(runs)
            ),
            f"days {first}..{last}; the sandbox server runs in its own process (peak RSS "
            f"{megabytes(server_rss):,.0f} MB, not counted)",
        ],
    }


def listed(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)
