"""The sandbox HTTP server: Confluent Cloud's REST wire contracts plus a Prometheus query API, on 127.0.0.1.

It speaks what the real services speak (Basic auth, paging with opaque tokens and absolute `next` URLs,
`errors[]` bodies, X-Request-Id and X-RateLimit-* headers, Connect's odd shapes) so a client that works
here works against api.confluent.cloud. Faults, bill revisions and replaced cost rows can be switched from
Python or over HTTP under /_sandbox/, so a sandbox started from the CLI can be driven by a test or a demo too.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from chargeback_assets.sandbox.bill import Bill
from chargeback_assets.sandbox.faults import FaultSet
from chargeback_assets.sandbox.organization import JsonObject, Organization
from chargeback_assets.sandbox.pagination import PageError, encode_token, page_url, take_page
from chargeback_assets.sandbox.promql import (
    BadQuery,
    evaluate,
    parse_duration_ms,
    parse_query,
    parse_time_ms,
    success_body,
)
from chargeback_assets.sandbox.query_workers import QueryWorkers

RATE_LIMIT = 1000
RATE_WINDOW_S = 60
COSTS_MAX_DAYS = 31


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclass
class Reply:
    status: int
    body: Any  # JSON-able, or bytes sent as text/plain
    headers: dict[str, str]


class ApiError(Exception):
    """An error answered in Confluent's `errors[]` shape."""

    def __init__(self, status: int, code: str, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.parameter = status, code, detail, parameter

    def reply(self) -> Reply:
        error: JsonObject = {
            "id": uuid.uuid4().hex,
            "status": str(self.status),
            "code": self.code,
            "title": HTTPStatus(self.status).phrase,
            "detail": self.detail,
        }
        if self.parameter:
            error["source"] = {"parameter": self.parameter}
        return Reply(self.status, {"errors": [error]}, {})


class ShapedError(Exception):
    """An error in a group's own shape (Connect's `{"error": ...}`, identity pools' `{"error_code": ...}`)."""

    def __init__(self, status: int, body: JsonObject) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


# path -> (list key in Organization.objects, api_version, list kind, required environment filter)
_SIMPLE_LISTS: dict[str, tuple[str, str, str, bool]] = {
    "/org/v2/environments": ("environments", "org/v2", "EnvironmentList", False),
    "/org/v2/organizations": ("organizations", "org/v2", "OrganizationList", False),
    "/cmk/v2/clusters": ("kafka_clusters", "cmk/v2", "ClusterList", True),
    "/srcm/v3/clusters": ("schema_registries", "srcm/v3", "ClusterList", True),
    "/ksqldbcm/v2/clusters": ("ksqldb_clusters", "ksqldbcm/v2", "ClusterList", True),
    "/fcpm/v2/compute-pools": ("compute_pools", "fcpm/v2", "ComputePoolList", True),
    "/iam/v2/service-accounts": ("service_accounts", "iam/v2", "ServiceAccountList", False),
    "/iam/v2/users": ("users", "iam/v2", "UserList", False),
    "/iam/v2/api-keys": ("api_keys", "iam/v2", "ApiKeyList", False),
    "/iam/v2/identity-providers": ("identity_providers", "iam/v2", "IdentityProviderList", False),
}

# Optional list filters: query parameter -> how to read the compared value from an item.
_FILTERS: dict[str, dict[str, Callable[[JsonObject], str | None]]] = {
    "/iam/v2/service-accounts": {"display_name": lambda i: i.get("display_name")},
    "/iam/v2/api-keys": {
        "spec.owner": lambda i: i["spec"]["owner"]["id"],
        "spec.resource": lambda i: (i["spec"].get("resource") or {}).get("id"),
    },
    "/cmk/v2/clusters": {"spec.network": lambda i: (i["spec"].get("network") or {}).get("id")},
    "/fcpm/v2/compute-pools": {"spec.region": lambda i: i["spec"]["region"]},
}

_CONNECTORS = re.compile(r"^/connect/v1/environments/(?P<env>[^/]+)/clusters/(?P<lkc>[^/]+)/connectors$")
_POOLS = re.compile(r"^/iam/v2/identity-providers/(?P<op>[^/]+)/identity-pools$")
_STATEMENTS = re.compile(r"^/sql/v1/organizations/(?P<org>[^/]+)/environments/(?P<env>[^/]+)/statements$")


class SandboxServer:
    """Serves `org` until stopped; `faults`, `requests` and the bill revisions drive and observe it."""

    def __init__(
        self,
        org: Organization,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key",
        api_secret: str = "sandbox-secret",
        prometheus_basic: tuple[str, str] | None = None,
        prometheus_bearer: str | None = None,
        query_workers: int = 0,
    ) -> None:
        """`query_workers` > 0 answers range queries in that many forked processes (`QueryWorkers`); only
        for a server started in a process of its own that has no other threads yet, as a benchmark's is."""
        self.org = org
        self.faults = FaultSet()
        self.requests: list[RecordedRequest] = []
        self.bill = Bill(org.costs)
        self._host, self._port = host, port
        self.api_key, self.api_secret = api_key, api_secret
        self._credentials = f"{api_key}:{api_secret}"
        self._prometheus_basic = f"{prometheus_basic[0]}:{prometheus_basic[1]}" if prometheus_basic else None
        self._prometheus_bearer = prometheus_bearer
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._window = (time.monotonic(), 0)
        self._query_worker_count = query_workers
        self._query_workers: QueryWorkers | None = None

    # lifecycle ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        if self._query_worker_count:
            self._query_workers = QueryWorkers(self.org.usage, self._query_worker_count)
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._query_workers is not None:
            self._query_workers.close()
        self._httpd, self._thread, self._query_workers = None, None, None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # bill revisions -------------------------------------------------------------------------------

    def revise_bill(self, day: date | str, factor: Decimal | str = Decimal("1.10")) -> None:
        self.bill.revise(day, Decimal(factor))

    def empty_bill(self, day: date | str) -> None:
        self.bill.empty(day)

    def revert_bill(self, day: date | str) -> None:
        self.bill.revert(day)

    def replace_costs(self, day: date | str, rows: list[Any]) -> None:
        """Serve `rows` verbatim for `day` (hostile rows for a client test) until `revert_bill(day)`."""
        self.bill.replace(day, rows)

    # request handling -----------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Any, body: bytes
    ) -> tuple[Reply, dict[str, list[str]]]:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        if path.startswith("/_sandbox/"):
            return self._control(method, path, body), query
        if path == "/api/v1/query_range" and method == "POST":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            query = {**query, **form}
        answering = ("rate_limit", "server_error", "delay", "echo_credentials")
        for fault in iter(lambda: self.faults.take(path, answering), None):
            if fault.kind == "delay":
                self._stopping.wait(fault.seconds)
                continue
            if fault.kind == "echo_credentials":
                return _echo_credentials(fault.status, headers.get("Authorization")), query
            return _fault_reply(fault.kind, fault.seconds, fault.status, path), query
        try:
            reply = self._route(method, path, query, headers)
        except ApiError as err:
            reply = err.reply()
        except ShapedError as err:
            reply = Reply(err.status, err.body, {})
        if reply.status == 200 and not path.startswith("/api/v1/") and path != "/-/ready":
            reply.headers.update(self._rate_headers())
        if reply.status == 200 and self.faults.take(path, ("truncated",)):
            encoded = json.dumps(reply.body).encode() if not isinstance(reply.body, bytes) else reply.body
            reply = Reply(
                200,
                encoded[: max(1, len(encoded) // 2)],
                {**reply.headers, "Content-Type": "application/json"},
            )
        return reply, query

    def record(self, method: str, raw_path: str, query: dict[str, list[str]], status: int) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, urlsplit(raw_path).path, query, status))

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            started, count = self._window
            now = time.monotonic()
            if now - started >= RATE_WINDOW_S:
                started, count = now, 0
            self._window = (started, count + 1)
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - count - 1)),
            "X-RateLimit-Reset": str(max(1, round(RATE_WINDOW_S - (now - started)))),
        }

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> Reply:
        if path == "/-/ready":
            return Reply(200, b"Prometheus Server is Ready.\n", {})
        if path in ("/api/v1/query_range", "/api/v1/query"):
            return self._prometheus(method, path, query, headers)
        if method != "GET":
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        is_connect = bool(_CONNECTORS.match(path))
        if not self._authorized(headers.get("Authorization"), basic=self._credentials):
            body: JsonObject = (
                {"error": {"code": 401, "message": "Unauthorized"}}
                if is_connect
                else ApiError(
                    401, "user_unauthenticated", "Valid authentication credentials must be provided"
                )
                .reply()
                .body
            )
            return Reply(
                401, body, {"WWW-Authenticate": 'Basic error="invalid_key", realm="api.confluent.cloud"'}
            )
        if path in _SIMPLE_LISTS:
            return self._simple_list(path, query)
        if path == "/billing/v1/costs":
            return self._costs(path, query)
        for pattern, handler in (
            (_CONNECTORS, self._connectors),
            (_POOLS, self._identity_pools),
            (_STATEMENTS, self._statements),
        ):
            match = pattern.match(path)
            if match:
                return handler(path, query, **match.groupdict())
        raise ApiError(404, "resource_not_found", f"no resource at {path}")

    def _authorized(self, header: str | None, basic: str | None = None, bearer: str | None = None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if basic and scheme.lower() == "basic":
            try:
                supplied = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(supplied.encode(), basic.encode())
        if bearer and scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), bearer.encode())
        return False

    # Confluent endpoints --------------------------------------------------------------------------

    def _simple_list(self, path: str, query: dict[str, list[str]]) -> Reply:
        key, api_version, kind, needs_env = _SIMPLE_LISTS[path]
        items = self.org.objects[key]
        if needs_env:
            env = (query.get("environment") or [""])[-1]
            if not env:
                raise ApiError(400, "invalid_filter", "environment is required", parameter="environment")
            items = [i for i in items if i["spec"]["environment"]["id"] == env]
        for param, read in _FILTERS.get(path, {}).items():
            wanted = query.get(param)
            if wanted:
                items = [i for i in items if read(i) in wanted]
        return self._paged(path, query, items, api_version, kind)

    def _paged(
        self,
        path: str,
        query: dict[str, list[str]],
        items: list[JsonObject],
        api_version: str,
        kind: str,
        default_size: int = 10,
        max_size: int = 100,
        meta_style: str = "list",
    ) -> Reply:
        try:
            page = take_page(items, query, default_size, max_size)
        except PageError as err:
            raise ApiError(400, "invalid_filter", str(err), parameter=err.parameter) from None
        next_token = page.next_token
        if self.faults.take(path, ("repeat_page_token",)):
            # the same token forever: the page just served (or the first one) is offered again as "next"
            next_token = page.request_token or encode_token(0, page.size)
        meta: JsonObject = {}
        if next_token:
            next_url = page_url(self.url, path, query, next_token)
            if meta_style == "costs":
                meta = {"next": next_url}
            elif meta_style == "statements":
                meta = {"self": page_url(self.url, path, query, page.request_token), "next": next_url}
            else:
                meta = {
                    "first": page_url(self.url, path, query, None),
                    "next": next_url,
                    "total_size": page.total,
                }
        return Reply(
            200, {"api_version": api_version, "kind": kind, "metadata": meta, "data": list(page.items)}, {}
        )

    def _costs(self, path: str, query: dict[str, list[str]]) -> Reply:
        bounds = []
        for name in ("start_date", "end_date"):
            raw = (query.get(name) or [""])[-1]
            if not raw:
                raise ApiError(400, "invalid_filter", f"{name} is required", parameter=name)
            try:
                bounds.append(date.fromisoformat(raw))
            except ValueError:
                raise ApiError(
                    400, "invalid_filter", f"{name} must be a date YYYY-MM-DD, got {raw!r}", name
                ) from None
        start, end = bounds
        if end <= start:
            raise ApiError(400, "invalid_filter", "end_date must be after start_date", parameter="end_date")
        if (end - start).days > COSTS_MAX_DAYS:
            raise ApiError(
                400,
                "invalid_filter",
                f"the window between start_date and end_date is over {COSTS_MAX_DAYS} days",
                parameter="end_date",
            )
        rows = self.bill.rows(start, end)
        return self._paged(path, query, rows, "billing/v1", "CostList", 5000, 10000, meta_style="costs")

    def _connectors(self, path: str, query: dict[str, list[str]], env: str, lkc: str) -> Reply:
        if env not in self.org.environment_ids() or lkc not in self.org.cluster_ids(env):
            raise ShapedError(404, {"error": {"code": 404, "message": f"cluster {lkc} not found in {env}"}})
        entries = self.org.connectors.get(env, {}).get(lkc, {})
        expand = {
            part.strip() for value in query.get("expand", []) for part in value.split(",") if part.strip()
        }
        if not expand:
            return Reply(200, sorted(entries), {})
        return Reply(
            200, {name: {k: v for k, v in e.items() if k in expand} for name, e in entries.items()}, {}
        )

    def _identity_pools(self, path: str, query: dict[str, list[str]], op: str) -> Reply:
        if op not in self.org.identity_pools:
            raise ShapedError(
                404, {"error_code": 404, "message": f"Provider {op} either doesn't exist or is not active"}
            )
        return self._paged(path, query, self.org.identity_pools[op], "iam/v2", "IdentityPoolList")

    def _statements(self, path: str, query: dict[str, list[str]], org: str, env: str) -> Reply:
        if org != self.org.organization_id or env not in self.org.environment_ids():
            raise ApiError(
                404, "resource_not_found", f"environment {env} of organization {org} does not exist"
            )
        items = [s for s in self.org.objects["flink_statements"] if s["environment_id"] == env]
        pools = query.get("spec.compute_pool_id")
        if pools:
            items = [s for s in items if s["spec"]["compute_pool_id"] in pools]
        return self._paged(path, query, items, "sql/v1", "StatementList", meta_style="statements")

    # Prometheus -----------------------------------------------------------------------------------

    def _prometheus(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> Reply:
        if (self._prometheus_basic or self._prometheus_bearer) and not self._authorized(
            headers.get("Authorization"), basic=self._prometheus_basic, bearer=self._prometheus_bearer
        ):
            return Reply(401, {"status": "error", "errorType": "unauthorized", "error": "unauthorized"}, {})
        if path != "/api/v1/query_range" or method not in ("GET", "POST"):
            return _bad_data(f"the sandbox answers only GET/POST /api/v1/query_range, not {method} {path}")
        try:
            params = {}
            for name in ("query", "start", "end", "step"):
                value = (query.get(name) or [""])[-1]
                if not value:
                    raise BadQuery(f'invalid parameter "{name}": missing')
                params[name] = value
            asked = (
                parse_query(params["query"]),
                parse_time_ms(params["start"]),
                parse_time_ms(params["end"]),
                parse_duration_ms(params["step"]),
            )
            if self._query_workers is not None:
                return Reply(200, self._query_workers.answer(*asked), {"Content-Type": "application/json"})
            result = evaluate(self.org.usage, *asked)
        except BadQuery as err:
            return _bad_data(str(err))
        return Reply(200, success_body(result), {})

    # control channel ------------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body.strip() else {}
            if path == "/_sandbox/faults" and method == "POST":
                fault = self.faults.set_from_json(payload)
                return Reply(200, {"armed": fault.to_json()}, {})
            if path == "/_sandbox/faults" and method == "DELETE":
                self.faults.clear()
                return Reply(200, {"armed": []}, {})
            if path == "/_sandbox/faults" and method == "GET":
                return Reply(200, {"armed": [f.to_json() for f in self.faults.active()]}, {})
            if path == "/_sandbox/revise" and method == "POST":
                self.revise_bill(payload["date"], Decimal(str(payload.get("factor", "1.10"))))
                return Reply(200, {"revised": payload["date"]}, {})
            if path == "/_sandbox/empty" and method == "POST":
                self.empty_bill(payload["date"])
                return Reply(200, {"emptied": payload["date"]}, {})
            if path == "/_sandbox/revert" and method == "POST":
                self.revert_bill(payload["date"])
                return Reply(200, {"reverted": payload["date"]}, {})
            if path == "/_sandbox/rename" and method == "POST":
                self.org.rename(payload["id"], payload["display_name"])
                return Reply(200, {"renamed": payload["id"]}, {})
            if path == "/_sandbox/costs" and method == "POST":
                self.replace_costs(payload["date"], payload["rows"])
                return Reply(200, {"replaced": payload["date"], "rows": len(payload["rows"])}, {})
        except (ValueError, KeyError, TypeError, InvalidOperation) as err:
            return ApiError(400, "invalid_request", f"{path}: {err}").reply()
        return ApiError(404, "resource_not_found", f"no control endpoint {method} {path}").reply()


def _bad_data(message: str) -> Reply:
    return Reply(400, {"status": "error", "errorType": "bad_data", "error": message}, {})


def _echo_credentials(status: int, authorization: str | None) -> Reply:
    """A refusal that quotes the credentials it was given, in the shapes such pages use."""
    scheme, _, value = (authorization or "").partition(" ")
    credentials = value
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            credentials = base64.b64decode(value, validate=True).decode()
    body = (
        f"Authorization: {authorization or '(none)'}\n"
        f"credentials: {credentials}\n"
        f"login: /login?credentials={quote(credentials, safe='')}\n"
    )
    return Reply(status, body.encode(), {})


def _fault_reply(kind: str, seconds: float, status: int, path: str) -> Reply:
    if kind == "rate_limit":
        wait = f"{seconds:g}"
        reply = ApiError(429, "too_many_requests", f"Too many requests have been made to {path}").reply()
        reply.headers.update(
            {
                "Retry-After": wait,
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": wait,
            }
        )
        return reply
    return ApiError(status, "server_error", "The service is temporarily unavailable").reply()


class _Handler(BaseHTTPRequestHandler):
    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write (handle_one_request flushes)
    server_version = "ChargebackSandbox/1"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply, query = self.sandbox.handle(method, self.path, self.headers, body)
        self.sandbox.record(method, self.path, query, reply.status)
        if isinstance(reply.body, bytes):
            payload = reply.body
            content_type = reply.headers.pop("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(reply.body).encode()
            content_type = "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Request-Id", uuid.uuid4().hex)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a delay fault past its timeout)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry no secrets, but test output stays readable; see `requests` instead."""
