"""Push gauges to a Prometheus Pushgateway with `prometheus_client`, replacing the whole group (HTTP PUT), so
stale series go away.

The Pushgateway refuses samples with timestamps and serves one value per series; it shows the newest day,
while the OpenMetrics file carries the history. A user and password in the URL
(`https://user:pa%40ss@host`) are sent as HTTP basic auth and never shown: errors and outputs name the URL
without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.error import HTTPError
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    delete_from_gateway,
    push_to_gateway,
)
from prometheus_client.registry import Collector

from chargeback_assets.emitters.base import EmitterError
from chargeback_assets.redaction import scrub

TIMEOUT_SECONDS = 10.0
Handler = Callable[..., Callable[[], None]]


def group_url(base_url: str, job: str, grouping: Mapping[str, str]) -> str:
    path = f"/metrics/job/{quote(job, safe='')}"
    path += "".join(f"/{quote(key, safe='')}/{quote(value, safe='')}" for key, value in grouping.items())
    return base_url.rstrip("/") + path


def redacted(url: str) -> str:
    """The URL without user:password, for error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def push(base_url: str, job: str, grouping: Mapping[str, str], collector: Collector) -> str:
    """PUT the collector's samples (no timestamps) as the group; returns the group URL (redacted)."""
    gateway, handler = _gateway(base_url)
    return _send(
        "push",
        group_url(base_url, job, grouping),
        lambda: push_to_gateway(
            gateway, job, collector, dict(grouping), timeout=TIMEOUT_SECONDS, handler=handler
        ),
    )


def delete(base_url: str, job: str, grouping: Mapping[str, str]) -> str:
    """Remove the whole group (nothing is published for the tenant any more); returns its URL (redacted)."""
    gateway, handler = _gateway(base_url)
    return _send(
        "delete",
        group_url(base_url, job, grouping),
        lambda: delete_from_gateway(gateway, job, dict(grouping), timeout=TIMEOUT_SECONDS, handler=handler),
    )


def _gateway(url: str) -> tuple[str, Handler]:
    """The URL without credentials, and the handler that sends them as basic auth (if the URL had any)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, default_handler
    username, password = unquote(parts.username), unquote(parts.password or "")

    def handler(**request: object) -> Callable[[], None]:
        return basic_auth_handler(**request, username=username, password=password)  # type: ignore[arg-type]

    return redacted(url), handler


def _send(action: str, url: str, send: Callable[[], None]) -> str:
    shown = redacted(url)
    try:
        send()
    except HTTPError as exc:
        body = exc.read().decode("utf-8", "replace") if exc.fp else ""
        status = f"HTTP {exc.code} {scrub(body)[:300]}"  # scrubbed before it is cut
        raise EmitterError(f"pushgateway {shown} refused the {action}: {status}") from exc
    except OSError as exc:
        raise EmitterError(f"pushgateway {shown} unreachable: {type(exc).__name__}") from exc
    return shown
