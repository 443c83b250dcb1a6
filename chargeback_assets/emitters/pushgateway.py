"""Push gauges to a Prometheus Pushgateway, replacing the whole group (HTTP PUT), so stale series go away.

The Pushgateway refuses samples with timestamps and serves one value per series; it shows the newest day,
while the OpenMetrics file carries the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from chargeback_assets.emitters.base import EmitterError
from chargeback_assets.redaction import scrub

TIMEOUT_SECONDS = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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


def push(base_url: str, job: str, grouping: Mapping[str, str], body: bytes) -> str:
    """PUT `body` (Prometheus text format, UTF-8, no timestamps) as the group; returns the group URL
    (redacted)."""
    return _send("PUT", group_url(base_url, job, grouping), body)


def delete(base_url: str, job: str, grouping: Mapping[str, str]) -> str:
    """Remove the whole group (nothing is published for the tenant any more); returns its URL (redacted)."""
    return _send("DELETE", group_url(base_url, job, grouping), None)


def _send(method: str, url: str, body: bytes | None) -> str:
    try:
        response = requests.request(
            method, url, data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        raise EmitterError(f"pushgateway {redacted(url)} unreachable: {type(exc).__name__}") from exc
    if response.status_code not in (200, 202):
        action = "push" if method == "PUT" else "delete"
        status = f"HTTP {response.status_code} {scrub(response.text)[:300]}"  # scrubbed before it is cut
        raise EmitterError(f"pushgateway {redacted(url)} refused the {action}: {status}")
    return redacted(url)
