"""Switchable faults: the failure modes a Confluent Cloud client must survive, on demand and countable."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from threading import Lock
from typing import Any

FAULT_KINDS = ("rate_limit", "server_error", "delay", "truncated", "repeat_page_token", "echo_credentials")
"""`echo_credentials` answers `status` with a plain-text body that quotes the request's credentials (the
Authorization header as sent, percent-encoded and decoded), as a misconfigured proxy or debug endpoint does:
what a client must never pass on to a log, an error or a database."""
ERROR_STATUSES = frozenset(status.value for status in HTTPStatus if 400 <= status.value <= 599)


@dataclass
class Fault:
    """An armed fault: fires on paths starting with `path_prefix`, `times` times (None: forever)."""

    kind: str
    times: int | None = 1
    path_prefix: str = "/"
    seconds: float = 1.0  # rate_limit: Retry-After / X-RateLimit-Reset; delay: how long to sleep
    status: int = 503  # server_error: 500, 502, 503 or 504; echo_credentials: any 4xx or 5xx
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "times": self.times,
            "path_prefix": self.path_prefix,
            "seconds": self.seconds,
            "status": self.status,
            "fired": self.fired,
        }


class FaultSet:
    """The armed faults of one server; thread-safe because the server answers requests concurrently."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = Lock()

    def set(
        self,
        kind: str,
        times: int | None = 1,
        path_prefix: str = "/",
        seconds: float = 1.0,
        status: int = 503,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {list(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError(f"fault times must be at least 1 or None (forever), got {times}")
        if seconds < 0:
            raise ValueError(f"fault seconds must not be negative, got {seconds}")
        if kind == "server_error" and status not in (500, 502, 503, 504):
            raise ValueError(f"server_error status must be 500, 502, 503 or 504, got {status}")
        if kind == "echo_credentials" and status not in ERROR_STATUSES:
            raise ValueError(f"echo_credentials status must be an HTTP error status (4xx, 5xx), got {status}")
        if not path_prefix.startswith("/"):
            raise ValueError(f"fault path_prefix must start with '/', got {path_prefix!r}")
        fault = Fault(kind, times, path_prefix, float(seconds), int(status))
        with self._lock:
            self._faults.append(fault)
        return fault

    def set_from_json(self, body: Any) -> Fault:
        if not isinstance(body, dict) or "kind" not in body:
            raise ValueError('fault body must be a JSON object with at least "kind"')
        unknown = set(body) - {"kind", "times", "path_prefix", "seconds", "status"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return self.set(**body)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, kinds: tuple[str, ...] = FAULT_KINDS) -> Fault | None:
        """The first armed fault of `kinds` matching `path`, counted as fired (and disarmed when used up)."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and path.startswith(fault.path_prefix):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None
