"""Unreachable metrics are never "no usage": a transient outage that outlasts the run's retry budget falls
back visibly, a permanent error fails the partition, and a Terminate stops the retrying workers at once.
A run for a revised bill keeps a day's stored usage only when it answers exactly what the new bill needs."""

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.engine.calculate import METRICS_FAILED_DETAIL
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.runtime import build_runtime
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.chargeback import calculate_day
from chargeback_assets.stages.checks import metrics_failures, reconcile_day
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.scope import StageError, TenantScope
from chargeback_assets.stages.usage import fetch_usage
from chargeback_assets.storage.billing import billing_for_day, replace_billing_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets.storage.usage import usage_for_day
from chargeback_assets_tests.databases import StorageTarget
from chargeback_assets_tests.ecosystems.http_fake import FakeTime

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
USAGE_PRODUCTS = {"KAFKA_NETWORK_READ", "KAFKA_NETWORK_WRITE", "KAFKA_NUM_CKUS", "FLINK_NUM_CFUS"}
QUERY_RANGE = "/api/v1/query_range"
PROMETHEUS_LOGIN = ("reader", "prom-pass-Xk3")


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    org = generate_org("small", seed=5, end_date=TODAY, days=5)
    with SandboxServer(org, prometheus_basic=PROMETHEUS_LOGIN) as running:
        yield running


@contextmanager
def gathered_scope(
    tmp_path: Path,
    storage: StorageTarget,
    server: SandboxServer,
    budget: RetryBudget,
    password: str = PROMETHEUS_LOGIN[1],
) -> Iterator[TenantScope]:
    """Tenant t1 on the sandbox with the day's bill and inventory gathered, its clients on `budget`."""
    metrics: dict[str, Any] = {
        "auth_type": "basic",
        "username": PROMETHEUS_LOGIN[0],
        "password": password,
        "max_attempts": 10,
    }
    tenant = sandbox_tenant(
        server.org, server, tenant_id="t1", start_date=TODAY - timedelta(days=5), metrics=metrics
    )
    resource = ChargebackResource(
        config_path=str(write_config(tmp_path / "c.yaml", {"t1": tenant}, storage.section))
    )
    runtime = build_runtime(resource.tenant("t1"), budget)
    try:
        with resource.database() as db:
            scope = TenantScope(resource.tenant("t1"), db, runtime)
            gather_billing(scope, [DAY])
            gather_inventory(scope, [DAY])
            yield scope
    finally:
        runtime.close()


def queries_asked(server: SandboxServer) -> list[int]:
    return [request.status for request in server.requests if request.path == QUERY_RANGE]


def test_a_revised_bill_keeps_the_stored_usage_when_it_needs_the_same_queries(
    tmp_path, storage, server
) -> None:
    with gathered_scope(tmp_path, storage, server, FakeTime().budget()) as scope:
        [first] = fetch_usage(scope, [DAY])
        stored = usage_for_day(scope.db, "confluent_cloud", "t1", DAY)
        assert first.records > 0 and first.resources > 0 and not first.kept
        server.revise_bill(DAY, "1.25")
        gather_billing(scope, [DAY])
        asked = len(queries_asked(server))

        [kept] = fetch_usage(scope, [DAY], keep_stored=True)
        assert kept.kept and len(queries_asked(server)) == asked, "Prometheus is not asked again"
        assert (kept.records, kept.resources) == (first.records, first.resources)
        assert usage_for_day(scope.db, "confluent_cloud", "t1", DAY) == stored
        state = get_state(scope.db, "confluent_cloud", "t1", DAY)
        assert state.usage_fingerprint == state.billing_fingerprint, "the usage now answers the revised bill"

        [fetched] = fetch_usage(scope, [DAY])
        assert not fetched.kept and len(queries_asked(server)) > asked, "a run not asking to keep it fetches"


def test_stored_usage_is_fetched_again_when_the_revised_bill_needs_other_queries(
    tmp_path, storage, server
) -> None:
    with gathered_scope(tmp_path, storage, server, FakeTime().budget()) as scope:
        fetch_usage(scope, [DAY])
        lines = billing_for_day(scope.db, "confluent_cloud", "t1", DAY)
        dropped = next(line.resource_id for line in lines if line.product_type in USAGE_PRODUCTS)
        assert dropped in usage_for_day(scope.db, "confluent_cloud", "t1", DAY)
        with scope.db.transaction() as tx:  # the revised bill no longer has that resource's lines
            kept_lines = [line for line in lines if line.resource_id != dropped]
            replace_billing_day(tx, "confluent_cloud", "t1", DAY, kept_lines, [])
        asked = len(queries_asked(server))

        [day] = fetch_usage(scope, [DAY], keep_stored=True)
        assert not day.kept and len(queries_asked(server)) > asked
        assert dropped not in usage_for_day(scope.db, "confluent_cloud", "t1", DAY)


def test_stored_usage_whose_fetch_failed_is_fetched_again_for_a_revised_bill(
    tmp_path, storage, server
) -> None:
    with gathered_scope(tmp_path, storage, server, FakeTime().budget(20)) as scope:
        server.faults.set("server_error", times=None, path_prefix="/api/v1/", status=503)
        [failed] = fetch_usage(scope, [DAY])
        assert failed.failures
        server.faults.clear()
        asked = len(queries_asked(server))

        [day] = fetch_usage(scope, [DAY], keep_stored=True)
        assert not day.kept and not day.failures and day.records > 0
        assert len(queries_asked(server)) > asked
        assert metrics_failures(scope, DAY) == []


def test_a_transient_outage_that_outlasts_the_budget_falls_back_visibly(tmp_path, storage, server) -> None:
    fake_time = FakeTime()
    budget = fake_time.budget(20)
    with gathered_scope(tmp_path, storage, server, budget) as scope:
        server.faults.set("server_error", times=None, path_prefix="/api/v1/", status=503)
        [usage] = fetch_usage(scope, [DAY])
        assert budget.remaining() == 0 and fake_time.waits, "retried until the run's budget was spent"
        assert usage.failures and usage.records == 0
        assert all("status 503" in error and server.url in error for error in usage.failures.values())
        assert metrics_failures(scope, DAY)
        resolve_day(scope, DAY)
        calculate_day(scope, DAY)
        rows = chargeback_rows_for_day(scope.db, "confluent_cloud", "t1", DAY)
        fell_back = [r for r in rows if r.product_type in USAGE_PRODUCTS and r.resource_id in usage.failures]
        assert fell_back, "the day has usage-priced lines on resources whose metrics failed"
        assert {r.allocation_detail for r in fell_back} == {METRICS_FAILED_DETAIL}
        assert "usage_ratio" not in {r.allocation_method for r in fell_back}, "no usage tier could answer"
        assert reconcile_day(scope, DAY).mismatches == ()


def test_a_permanent_metrics_error_fails_the_partition_without_retrying(tmp_path, storage, server) -> None:
    fake_time = FakeTime()
    with gathered_scope(tmp_path, storage, server, fake_time.budget(), password="wrong-pass-Zz9") as scope:
        with pytest.raises(StageError, match=rf"tenant t1, date {DAY}: metrics source failed: .*status 401"):
            fetch_usage(scope, [DAY])
        asked = [r.query for r in server.requests if r.path == QUERY_RANGE]
        assert asked and set(queries_asked(server)) == {401}
        assert len({repr(sorted(form.items())) for form in asked}) == len(asked), "no query asked twice"
        assert fake_time.waits == [] and metrics_failures(scope, DAY) == []


class Interrupted(BaseException):
    """What Dagster raises in the step's thread when a run is terminated (from a signal handler, too)."""


def test_a_terminate_while_workers_wait_to_retry_cancels_the_budget_and_returns_at_once(
    tmp_path, storage, server
) -> None:
    budget = RetryBudget(300)  # real waiting: the server asks for two minutes before every retry
    with gathered_scope(tmp_path, storage, server, budget) as scope:
        server.faults.set("rate_limit", times=None, path_prefix="/api/v1/", seconds=120)
        main = threading.main_thread().ident
        assert main == threading.get_ident(), "signals reach the main thread only"

        def terminate_once_waiting() -> None:
            deadline = time.monotonic() + 10
            while not queries_asked(server) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
            signal.pthread_kill(main, signal.SIGUSR1)

        def interrupt(signum: int, frame: object) -> None:
            raise Interrupted

        previous = signal.signal(signal.SIGUSR1, interrupt)
        terminator = threading.Thread(target=terminate_once_waiting, daemon=True)
        try:
            terminator.start()
            with pytest.raises(Interrupted):
                fetch_usage(scope, [DAY])
        finally:
            terminator.join(timeout=15)
            signal.signal(signal.SIGUSR1, previous)
        asked_queries = [
            sorted(request.query.items()) for request in server.requests if request.path == QUERY_RANGE
        ]
        assert len(asked_queries) == len({repr(q) for q in asked_queries}), "nobody waited out a Retry-After"
        assert budget.cancelled
        asked = len(queries_asked(server))
        time.sleep(0.3)
        assert len(queries_asked(server)) == asked, "the workers stopped asking"
        assert metrics_failures(scope, DAY) == [], "an interrupted fetch records nothing"
