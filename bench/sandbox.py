"""The `large` sandbox organization in its own process, driven over a pipe, and a config pointing at it.

The server runs in a separate (spawned) process so that the benchmark process's peak RSS and CPU are the
pipeline's alone: the simulated organization and its request handling live elsewhere, as Confluent Cloud
would. Its range queries are answered by a worker process per core, as Prometheus answers concurrent
queries on every core (sandbox/query_workers.py). The pipe answers what the HTTP API cannot: how many
requests were served, and bill revisions.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SIZE = "large"
SEED = 7
START_TIMEOUT_S = 120


def _serve(
    conn: Connection,
    size: str,
    seed: int,
    end_date: date,
    days: int,
    start_date: date,
    service_accounts: int | None,
) -> None:
    # Imported here, in the sandbox's process: the simulator's numpy has no place in the measured one.
    from chargeback_assets.sandbox import SandboxServer, generate_org
    from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config

    org = generate_org(size, seed=seed, end_date=end_date, days=days, service_accounts=service_accounts)
    # The simulator stands in for Confluent Cloud: keep its full collections off the organization it
    # holds, so its answers are not what the benchmark times.
    gc.freeze()
    with SandboxServer(org, query_workers=os.cpu_count() or 1) as server:
        conn.send(sandbox_tenant(org, server, tenant_id=f"sandbox-{size}", start_date=start_date))
        while True:
            command, *args = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "requests":
                conn.send(len(server.requests))
            elif command == "revise":
                server.revise_bill(*args)
                conn.send(None)
            elif command == "config":
                workdir, tenant_name, tenant = args
                conn.send(
                    write_config(
                        workdir / "chargeback.yaml", {tenant_name: tenant}, workdir / "chargeback.db"
                    )
                )
            elif command == "usage":
                used = resource.getrusage(resource.RUSAGE_SELF)
                conn.send((used.ru_utime + used.ru_stime + _workers_cpu_seconds(), used.ru_maxrss))


def _workers_cpu_seconds() -> float:
    """CPU of the live query workers (`getrusage` counts children only once they have exited)."""
    ticks = 0
    for worker in multiprocessing.active_children():
        with open(f"/proc/{worker.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


class RemoteSandbox:
    """The parent's handle on the sandbox process: the tenant settings it serves, and its counters."""

    def __init__(self, conn: Connection, tenant: dict[str, Any]) -> None:
        self._conn = conn
        self.tenant = tenant

    def _ask(self, *command: Any) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def requests(self) -> int:
        return self._ask("requests")

    def revise_bill(self, day: date, factor: Decimal) -> None:
        self._ask("revise", day, factor)

    def cpu_seconds(self) -> float:
        """CPU the sandbox process has used so far: the simulator's share of a timed span."""
        return self._ask("usage")[0]

    def peak_rss_kib(self) -> int:
        return self._ask("usage")[1]

    def write_config(self, workdir: Path, tenant_name: str) -> Path:
        """A config with this one tenant, its database in `workdir` (written by the sandbox's process)."""
        return self._ask("config", workdir, tenant_name, self.tenant)

    def stop(self) -> None:
        self._ask("stop")


@contextmanager
def remote_sandbox(
    end_date: date, days: int, start_date: date, service_accounts: int | None = None
) -> Iterator[RemoteSandbox]:
    """The large organization covering `[end_date - days, end_date)`, served until the block ends;
    `service_accounts` replaces its count of service accounts."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_serve,
        args=(child, SIZE, SEED, end_date, days, start_date, service_accounts),
        name="bench-sandbox",  # not a daemon: a daemonic process may not start the query workers
    )
    process.start()
    try:
        if not parent.poll(START_TIMEOUT_S):
            raise RuntimeError(f"the sandbox process did not start within {START_TIMEOUT_S} s")
        sandbox = RemoteSandbox(parent, parent.recv())
        yield sandbox
        sandbox.stop()
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()
