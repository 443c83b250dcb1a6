"""The Confluent Cloud REST client: Basic auth, cursor pagination, pacing, and retries through `retry.py`.

Every failure surfaces as `CCloudApiError`, whose text names the tenant, the host, the endpoint and the HTTP
status and never the API key or secret: server-provided text is scrubbed of the key and of every encoding of
the secret (redaction.py; an error body may echo the Authorization header) before it is cut to length. Which
failures are retried is decided in `ecosystems/retry.py`, for every source alike; a 404 on a list means
"nothing there".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from chargeback_assets.ecosystems.base import (
    LONE_SURROGATE,
    SourceError,
    json_body,
    lone_surrogate_in,
    origin,
)
from chargeback_assets.ecosystems.confluent_cloud.settings import HttpSettings
from chargeback_assets.ecosystems.retry import (
    DEFAULT_RETRY_BUDGET_SECONDS,
    RetryBudget,
    SourceRetry,
    transient_request_error,
    transient_response,
    wait_hint,
)
from chargeback_assets.redaction import MASK, remember_basic_credentials, scrub
from chargeback_assets.validation import Secret

SOURCE = "confluent_cloud"
DETAIL_LENGTH = 200
"""How much of a server's explanation an error quotes."""

DEFAULT_PAGE_SIZE = 99
PAGE_SIZES: dict[str, int] = {
    "/iam/v2/api-keys": 100,
    "/ksqldbcm/v2/clusters": 100,
    "/srcm/v3/clusters": 50,
    "/fcpm/v2/compute-pools": 50,
    "/sql/v1/": 50,
    "/billing/v1/costs": 2000,
}
"""Page size per endpoint path prefix (longest prefix wins). Some endpoints time out on big pages and the
reference saw 400s at 100 on others, hence 99 by default; billing pages are cheap rows."""


def page_size_for(path: str) -> int:
    matches = [prefix for prefix in PAGE_SIZES if path.startswith(prefix)]
    return PAGE_SIZES[max(matches, key=len)] if matches else DEFAULT_PAGE_SIZE


class CCloudApiError(SourceError):
    """A Confluent Cloud request failed.

    `kind` is one of `http` (an error status), `timeout`, `connection`, `invalid_response` (unparsable or
    wrongly shaped JSON) or `pagination` (a repeated page token). `status` is the HTTP status, or None when
    no response was received.
    """

    def __init__(
        self,
        tenant: str,
        host: str,
        endpoint: str,
        status: int | None,
        kind: str,
        detail: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        shown = status if status is not None else "no response"
        super().__init__(
            f"Confluent Cloud API {kind} error for tenant {tenant!r} on GET {endpoint} at {host} "
            f"(status {shown}): {detail}",
            tenant=tenant,
            source=SOURCE,
            host=host,
            transient=transient,
            retry_after=retry_after,
        )
        self.endpoint = endpoint
        self.status = status
        self.kind = kind

    def __repr__(self) -> str:
        return f"CCloudApiError({self.args[0]!r})"


def _error_detail(response: requests.Response) -> str:
    """The server's own explanation, from whichever of Confluent's error shapes it used (not yet scrubbed)."""
    try:
        body = json_body(response)
    except ValueError:
        return (response.text or response.reason or "").strip()
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or first.get("code") or "")
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or "")
        if "message" in body:
            return str(body["message"])
    return str(body)


class CCloudClient:
    """One connection (session, credentials, pacing clock) to one Confluent Cloud API host."""

    def __init__(
        self,
        settings: HttpSettings,
        api_key: str,
        api_secret: Secret,
        tenant: str,
        session: requests.Session | None = None,
        *,
        budget: RetryBudget | None = None,
    ) -> None:
        self.settings = settings
        self.tenant = tenant
        self.budget = budget or RetryBudget(DEFAULT_RETRY_BUDGET_SECONDS)
        self._api_key = api_key
        self._session = session or requests.Session()
        self._session.auth = (api_key, api_secret.reveal())
        remember_basic_credentials(api_key, api_secret.reveal())
        self._base_url = settings.base_url.rstrip("/")
        self.host = origin(self._base_url)
        self._retry = SourceRetry(
            self.budget,
            tenant,
            SOURCE,
            self.host,
            max_attempts=settings.max_retries + 1,
            cap_seconds=settings.backoff_cap_seconds,
        )
        self._pace_lock = threading.Lock()
        self._last_response_at: float | None = None

    def __repr__(self) -> str:
        return f"CCloudClient(base_url={self._base_url!r}, tenant={self.tenant!r})"

    def close(self) -> None:
        self._session.close()

    def list(
        self, path: str, params: Mapping[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the `data` items of every page, following `metadata.next` with the same filters."""
        query = dict(params or {})
        query["page_size"] = page_size or page_size_for(path)
        seen_tokens: set[str] = set()
        while True:
            body = self._get_json(path, query, not_found={"data": [], "metadata": {}})
            if not isinstance(body, dict):
                raise self._error(path, 200, "invalid_response", "list response is not a JSON object")
            data = body.get("data")
            if data is not None and not isinstance(data, list):
                raise self._error(path, 200, "invalid_response", "list response `data` is not an array")
            yield from data or []
            token = self._next_page_token(body.get("metadata"))
            if not token:
                return
            if token in seen_tokens:
                raise self._error(path, 200, "pagination", "the server repeated a page token; stopping")
            seen_tokens.add(token)
            query["page_token"] = token

    def get_raw(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One unpaginated GET (Connect's name-keyed connector map); a 404 gives `{}`."""
        return self._get_json(path, dict(params or {}), not_found={})

    @staticmethod
    def _next_page_token(metadata: Any) -> str | None:
        if not isinstance(metadata, dict):
            return None
        next_url = metadata.get("next")
        if not isinstance(next_url, str) or not next_url:
            return None
        tokens = parse_qs(urlsplit(next_url).query).get("page_token")
        return tokens[0] if tokens else None

    def _get_json(self, path: str, params: dict[str, Any], not_found: Any) -> Any:
        def attempt() -> Any:
            response = self._send(path, params)
            status = response.status_code
            if status == 404:
                return not_found
            if status != 200:
                raise self._http_error(path, response)
            try:
                body = json_body(response)
            except ValueError:
                transient = transient_response(status, body_readable=False)
                raise self._error(
                    path,
                    status,
                    "invalid_response",
                    "the response body is not valid JSON",
                    transient=transient,
                ) from None
            where = lone_surrogate_in(response.content, body)
            if where is not None:
                raise self._error(path, status, "invalid_response", f"{where} {LONE_SURROGATE}")
            return body

        return self._retry.call(path, attempt)

    def _send(self, path: str, params: dict[str, Any]) -> requests.Response:
        with self._pace_lock:
            self._pace()
            try:
                return self._session.get(
                    f"{self._base_url}{path}", params=params, timeout=self.settings.timeout_seconds
                )
            except requests.RequestException as exc:
                if isinstance(exc, requests.Timeout):
                    kind, detail = "timeout", "the request timed out"
                else:
                    kind, detail = "connection", f"{type(exc).__name__}: {exc}"
                transient = transient_request_error(exc)
                raise self._error(path, None, kind, detail, transient=transient) from None
            finally:
                self._last_response_at = time.monotonic()

    def _pace(self) -> None:
        """Keep `min_interval_seconds` between a response and the next request on this connection."""
        if self._last_response_at is None:
            return
        wait = self.settings.min_interval_seconds - (time.monotonic() - self._last_response_at)
        if wait > 0:
            self.budget.sleep(wait)

    def _http_error(self, path: str, response: requests.Response) -> CCloudApiError:
        status = response.status_code
        return self._error(
            path,
            status,
            "http",
            _error_detail(response) or "no detail",
            transient=transient_response(status),
            retry_after=wait_hint(response.headers),
        )

    def _error(
        self,
        path: str,
        status: int | None,
        kind: str,
        detail: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> CCloudApiError:
        return CCloudApiError(
            self.tenant,
            self.host,
            path,
            status,
            kind,
            self._scrub(detail),
            transient=transient,
            retry_after=retry_after,
        )

    def _scrub(self, text: str) -> str:
        """Server or library text without the key or any form of the secret, and only then cut to length: a
        secret split by the cut would no longer be recognized."""
        text = scrub(text)
        if self._api_key:
            text = text.replace(self._api_key, MASK)
        return text[:DETAIL_LENGTH]
