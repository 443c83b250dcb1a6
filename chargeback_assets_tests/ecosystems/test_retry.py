"""The one retry layer, through both real clients over real HTTP: the sandbox, scripted servers, closed ports.

Permanent faults are asked once and fail at once; transient ones are retried within the run's budget, waiting
what the server asked; a cancelled budget stops a retry loop at once. Waiting is done on a `FakeTime`, so
minutes of backoff take milliseconds, except where a real wait is what is being interrupted.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import requests

from chargeback_assets.config import parse_config
from chargeback_assets.ecosystems.base import SourceError, origin
from chargeback_assets.ecosystems.confluent_cloud.client import CCloudApiError, CCloudClient
from chargeback_assets.ecosystems.confluent_cloud.queries import BYTES_IN
from chargeback_assets.ecosystems.confluent_cloud.settings import HttpSettings
from chargeback_assets.ecosystems.prometheus import MetricsQueryError, PrometheusMetricsSource
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.ecosystems.retry import (
    DEFAULT_RETRY_BUDGET_SECONDS,
    RetryBudget,
    RetryCancelled,
    transient_response,
    wait_hint,
)
from chargeback_assets.engine.models import Window
from chargeback_assets.runtime import build_runtime
from chargeback_assets.sandbox import Organization, SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant
from chargeback_assets.validation import Secret
from chargeback_assets_tests.ecosystems.http_fake import FakeHttpServer, FakeTime, Reply

KEY, SECRET = "retry-key-7Q", "retry-secret-Zq9vW"
PROM_USER, PROM_PASSWORD = "reader", "prom-pass-Xk3"
END = date(2026, 1, 31)
DAY = date(2026, 1, 30)
ENVIRONMENTS = "/org/v2/environments"
QUERY_RANGE = "/api/v1/query_range"


@pytest.fixture(scope="module")
def org() -> Organization:
    return generate_org("small", seed=3, end_date=END, days=2)


@pytest.fixture
def sandbox(org: Organization) -> Iterator[SandboxServer]:
    with SandboxServer(
        org, api_key=KEY, api_secret=SECRET, prometheus_basic=(PROM_USER, PROM_PASSWORD)
    ) as running:
        yield running


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


class CountingSession(requests.Session):
    """A real session that counts the requests it was asked to make, for hosts that record nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls += 1
        return super().request(*args, **kwargs)


def ccloud(
    url: str, budget: RetryBudget, secret: str = SECRET, session: requests.Session | None = None, **http: Any
) -> CCloudClient:
    settings = HttpSettings(base_url=url, min_interval_seconds=0.0, timeout_seconds=5.0, **http)
    return CCloudClient(settings, KEY, Secret(secret), "acme", session, budget=budget)


def prometheus(
    url: str,
    budget: RetryBudget,
    password: str = PROM_PASSWORD,
    session: requests.Session | None = None,
    **settings: Any,
) -> PrometheusMetricsSource:
    prometheus_settings = PrometheusSettings(
        url=url, auth_type="basic", username=PROM_USER, password=Secret(password), **settings
    )
    return PrometheusMetricsSource(prometheus_settings, "acme", session, budget=budget)


def list_environments(client: CCloudClient) -> list[dict[str, Any]]:
    return list(client.list(ENVIRONMENTS))


def query(source: PrometheusMetricsSource) -> list[Any]:
    return source.query_range(BYTES_IN, Window.for_day(DAY), 3600, None)


def paths(sandbox: SandboxServer, path: str) -> list[int]:
    """The statuses the sandbox answered on `path`, in order: its own log of what the clients asked."""
    return [request.status for request in sandbox.requests if request.path == path]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_names_where_and_hides_secrets(error: SourceError, host: str, *secrets: str) -> None:
    text = f"{error} {error!r}"
    assert "'acme'" in text and host in text and error.host == host
    assert error.tenant == "acme" and error.source in ("confluent_cloud", "prometheus")
    assert ("Confluent Cloud" if error.source == "confluent_cloud" else "Prometheus") in text
    for secret in secrets:
        assert secret not in text


# -- permanent faults: asked once ---------------------------------------------------------------------------


def test_unauthorized_is_asked_once_per_endpoint(sandbox, fake_time, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = ccloud(sandbox.url, fake_time.budget(), secret="wrong-secret-Zq9vW")
    for call in (list_environments, lambda c: list(c.list("/iam/v2/users"))):
        with pytest.raises(CCloudApiError) as raised:
            call(client)
        assert raised.value.status == 401 and not raised.value.transient
        assert_names_where_and_hides_secrets(raised.value, sandbox.url, SECRET, "wrong-secret-Zq9vW")
    source = prometheus(sandbox.url, fake_time.budget(), password="wrong-pass-Xk3")
    with pytest.raises(MetricsQueryError) as raised:
        query(source)
    assert raised.value.status == 401 and not raised.value.transient
    assert_names_where_and_hides_secrets(raised.value, sandbox.url, "wrong-pass-Xk3", PROM_PASSWORD)

    assert paths(sandbox, ENVIRONMENTS) == [401]
    assert paths(sandbox, "/iam/v2/users") == [401]
    assert paths(sandbox, QUERY_RANGE) == [401]
    assert fake_time.waits == []
    for secret in (SECRET, "wrong-secret-Zq9vW", "wrong-pass-Xk3"):
        assert secret not in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_every_contract_error_is_asked_once(fake_time, status) -> None:
    server = FakeHttpServer()
    try:
        body = {"errors": [{"status": str(status), "detail": "no"}], "status": "error", "error": "no"}
        server.route(ENVIRONMENTS, Reply(status, body))
        server.route(QUERY_RANGE, Reply(status, body))
        with pytest.raises(CCloudApiError) as from_ccloud:
            list_environments(ccloud(server.url, fake_time.budget()))
        with pytest.raises(MetricsQueryError) as from_prometheus:
            query(prometheus(server.url, fake_time.budget()))
        for error in (from_ccloud.value, from_prometheus.value):
            assert error.status == status and not error.transient
            assert_names_where_and_hides_secrets(error, server.url, SECRET, PROM_PASSWORD)
        assert len(server.hits(ENVIRONMENTS)) == 1 and len(server.hits(QUERY_RANGE)) == 1
        assert fake_time.waits == []
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["closed-port", "nonexistent.invalid"], ids=["refused", "dns-failure"])
def test_a_host_that_cannot_be_reached_is_tried_once_without_sleeping(fake_time, host) -> None:
    url = f"http://127.0.0.1:{closed_port()}" if host == "closed-port" else f"http://{host}:8080"
    for build, call in ((ccloud, list_environments), (prometheus, query)):
        session = CountingSession()
        with pytest.raises(SourceError) as raised:
            call(build(url, fake_time.budget(), session=session))
        assert session.calls == 1 and fake_time.waits == []
        assert raised.value.status is None and not raised.value.transient
        assert_names_where_and_hides_secrets(raised.value, url, SECRET, PROM_PASSWORD)


def test_a_failed_tls_handshake_is_tried_once(sandbox, fake_time) -> None:
    """The sandbox speaks plain HTTP: an https client's handshake fails, and will fail the same way again."""
    url = sandbox.url.replace("http://", "https://")
    session = CountingSession()
    with pytest.raises(CCloudApiError) as raised:
        list_environments(ccloud(url, fake_time.budget(), session=session))
    assert session.calls == 1 and fake_time.waits == [] and not raised.value.transient
    assert "SSLError" in str(raised.value) and url in str(raised.value)


def test_a_wrongly_shaped_answer_is_not_retried(fake_time) -> None:
    server = FakeHttpServer()
    try:
        server.route(ENVIRONMENTS, Reply(body={"data": {"id": "env-1"}}))
        server.route(QUERY_RANGE, Reply(body={"status": "success", "data": {"resultType": "vector"}}))
        with pytest.raises(CCloudApiError, match="not an array") as from_ccloud:
            list_environments(ccloud(server.url, fake_time.budget()))
        with pytest.raises(MetricsQueryError, match="matrix") as from_prometheus:
            query(prometheus(server.url, fake_time.budget()))
        assert not from_ccloud.value.transient and not from_prometheus.value.transient
        assert len(server.hits(ENVIRONMENTS)) == 1 and len(server.hits(QUERY_RANGE)) == 1
    finally:
        server.stop()


# -- transient faults: retried within the budget ------------------------------------------------------------


def test_a_rate_limit_is_retried_after_exactly_the_wait_the_server_asked(sandbox, fake_time, caplog) -> None:
    caplog.set_level(logging.WARNING)
    sandbox.faults.set("rate_limit", times=1, path_prefix=ENVIRONMENTS, seconds=7)
    sandbox.faults.set("rate_limit", times=1, path_prefix=QUERY_RANGE, seconds=7)
    assert list_environments(ccloud(sandbox.url, fake_time.budget()))
    assert query(prometheus(sandbox.url, fake_time.budget()))
    assert paths(sandbox, ENVIRONMENTS) == [429, 200]
    assert paths(sandbox, QUERY_RANGE) == [429, 200]
    assert fake_time.waits == [7.0, 7.0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "chargeback_assets.ecosystems.retry"]
    assert len(warnings) == 2
    assert f"tenant 'acme', source confluent_cloud, host {sandbox.url}, {ENVIRONMENTS}:" in warnings[0]
    assert f"tenant 'acme', source prometheus, host {sandbox.url}, bytes_in:" in warnings[1]
    assert all("status 429" in w and "retrying in 7.00s" in w and "budget left" in w for w in warnings)


@pytest.mark.parametrize("budget_seconds", [60.0, 20.0])
def test_a_persistent_5xx_stops_when_the_budget_runs_out(sandbox, fake_time, budget_seconds) -> None:
    sandbox.faults.set("server_error", times=None, path_prefix=ENVIRONMENTS, status=503)
    sandbox.faults.set("server_error", times=None, path_prefix=QUERY_RANGE, status=502)
    for build, call, path, settings in (
        (ccloud, list_environments, ENVIRONMENTS, {"max_retries": 50}),
        (prometheus, query, QUERY_RANGE, {"max_attempts": 10}),
    ):
        time_of_run = FakeTime()
        with pytest.raises(SourceError) as raised:
            call(build(sandbox.url, time_of_run.budget(budget_seconds), **settings))
        assert raised.value.transient, "gave up on a fault that passes: the budget ran out"
        assert raised.value.status in (502, 503)
        assert time_of_run.now == pytest.approx(budget_seconds), "waited the budget, and not a second more"
        assert all(0 < wait <= 30 for wait in time_of_run.waits), "capped, and no retry once it is spent"
        assert len(paths(sandbox, path)) == len(time_of_run.waits) + 1


def test_the_attempt_cap_stops_before_the_budget(sandbox, fake_time) -> None:
    sandbox.faults.set("server_error", times=None, path_prefix=QUERY_RANGE, status=500)
    with pytest.raises(MetricsQueryError) as raised:
        query(prometheus(sandbox.url, fake_time.budget(), max_attempts=3))
    assert raised.value.transient and paths(sandbox, QUERY_RANGE) == [500, 500, 500]
    assert len(fake_time.waits) == 2 and fake_time.now < 10


def test_a_server_wait_past_the_deadline_is_not_waited(sandbox, fake_time) -> None:
    sandbox.faults.set("rate_limit", times=None, path_prefix=ENVIRONMENTS, seconds=500)
    with pytest.raises(CCloudApiError) as raised:
        list_environments(ccloud(sandbox.url, fake_time.budget(300)))
    assert raised.value.status == 429 and raised.value.transient
    assert paths(sandbox, ENVIRONMENTS) == [429] and fake_time.waits == []


def test_a_budget_of_zero_means_no_retries(sandbox, fake_time) -> None:
    sandbox.faults.set("server_error", times=1, path_prefix=ENVIRONMENTS, status=503)
    with pytest.raises(CCloudApiError) as raised:
        list_environments(ccloud(sandbox.url, fake_time.budget(0)))
    assert raised.value.transient and paths(sandbox, ENVIRONMENTS) == [503] and fake_time.waits == []


def test_a_connection_dropped_before_the_answer_is_retried(fake_time) -> None:
    """The server accepts, reads the request and hangs up (RemoteDisconnected); the second try is answered."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"data":[]}'

    def serve() -> None:
        for reply in (None, answer):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                if reply is not None:
                    connection.sendall(reply)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert list_environments(ccloud(url, fake_time.budget())) == []
        assert len(fake_time.waits) == 1
    finally:
        server.join(timeout=5)
        listener.close()


# -- cancel: Terminate stops retrying at once ---------------------------------------------------------------


def test_cancel_wakes_a_retry_that_is_waiting(sandbox) -> None:
    """A real wait: the server asks for two minutes, the run is terminated after the first answer."""
    sandbox.faults.set("rate_limit", times=None, path_prefix=QUERY_RANGE, seconds=120)
    budget = RetryBudget(300)
    source = prometheus(sandbox.url, budget)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            query(source)
        except BaseException as error:  # the test inspects whatever ended the call
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not paths(sandbox, QUERY_RANGE) and time.monotonic() < deadline:
        time.sleep(0.01)
    budget.cancel()
    worker.join(timeout=5)  # a bound on the wait: without the cancel the worker sleeps for two minutes
    assert not worker.is_alive(), "the cancel woke the waiting retry"
    assert [type(error) for error in outcome] == [RetryCancelled]
    assert paths(sandbox, QUERY_RANGE) == [429]


def test_a_cancelled_budget_sends_nothing(sandbox, fake_time) -> None:
    budget = fake_time.budget()
    budget.cancel()
    assert budget.cancelled
    with pytest.raises(RetryCancelled):
        list_environments(ccloud(sandbox.url, budget))
    with pytest.raises(RetryCancelled):
        query(prometheus(sandbox.url, budget))
    assert sandbox.requests == [] and fake_time.waits == []


def test_the_budget_is_a_deadline_shared_by_its_users(fake_time) -> None:
    budget = fake_time.budget(10)
    budget.sleep(4)
    assert budget.remaining() == 6
    fake_time.now += 100
    assert budget.remaining() == 0
    with pytest.raises(ValueError, match="0-86400"):
        RetryBudget(-1)


# -- classification and the run's wiring ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "readable", "transient"),
    [
        (429, True, True),
        (408, True, True),
        (425, True, True),
        (500, True, True),
        (503, False, True),
        (599, True, True),
        (200, False, True),
        (200, True, False),
        (400, True, False),
        (401, True, False),
        (403, True, False),
        (404, True, False),
        (400, False, False),
    ],
)
def test_which_answers_are_worth_another_try(status: int, readable: bool, transient: bool) -> None:
    assert transient_response(status, body_readable=readable) is transient


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "2.5", "X-RateLimit-Reset": "9"}, 2.5),
        ({"X-RateLimit-Reset": "0"}, 1.0),
        ({"RateLimit-Reset": "12"}, 12.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_the_servers_wait_hint(headers: dict[str, str], seconds: float | None) -> None:
    assert wait_hint(requests.structures.CaseInsensitiveDict(headers)) == seconds


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.confluent.cloud", "https://api.confluent.cloud:443"),
        ("http://user:pass@prometheus:9090/prefix?x=1", "http://prometheus:9090"),
        ("http://[::1]:9090/", "http://[::1]:9090"),
    ],
)
def test_errors_name_a_host_without_credentials_or_path(url: str, expected: str) -> None:
    assert origin(url) == expected


def _tenant(sandbox: SandboxServer, org: Organization) -> Any:
    raw = sandbox_tenant(org, sandbox, tenant_id="t1", start_date=DAY)
    return parse_config({"tenants": {"t1": raw}}, {}).tenants["t1"]


def test_build_runtime_gives_every_client_the_runs_budget(sandbox, org) -> None:
    budget = RetryBudget(30)
    runtime = build_runtime(_tenant(sandbox, org), budget)
    try:
        assert runtime.budget is budget
        assert runtime.cost_source.client.budget is budget
        assert runtime.inventory.client.budget is budget
        assert runtime.metrics.budget is budget
    finally:
        runtime.close()
    alone = build_runtime(_tenant(sandbox, org))
    try:
        assert alone.budget.seconds == DEFAULT_RETRY_BUDGET_SECONDS and alone.budget is not budget
    finally:
        alone.close()
