"""The one retry layer of every HTTP source: what is worth another try, how long to wait, when to stop.

Retrying lives here and nowhere else (DESIGN.md §3.11): not in Dagster (a `RetryPolicy` turns Terminate into
a retry), not in each client. A fault that another try may fix (429, 408, 425, 5xx, a timeout, a connection
dropped mid-response, a body that is not JSON) is retried; a fault that another try cannot fix (connection
refused, no such host, TLS, 401, 403 and every other 4xx, a wrongly shaped answer) fails at once, so a
misconfigured tenant fails in a second instead of after minutes of backoff.

Retries draw on a `RetryBudget`: one deadline for the whole run, so a source that is down costs the run at
most the budget however many requests meet it, and a Terminate (`RetryBudget.cancel`) wakes every waiting
worker at once instead of letting it sleep out its backoff.
"""

from __future__ import annotations

import http.client
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import requests
import tenacity
import urllib3.exceptions

from chargeback_assets.ecosystems.base import SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_BUDGET_SECONDS = 300.0
MAX_RETRY_BUDGET_SECONDS = 86_400
RATE_LIMIT_RESET_FLOOR_SECONDS = 1.0
"""Reset headers count whole seconds rounded down: a `0` means "within the second", not "now"."""

TRANSIENT_STATUSES = frozenset({408, 425, 429})
"""Besides every 5xx: request timeout, too early and too many requests are the server asking us to wait."""


class RetryCancelled(Exception):
    """The run was told to stop while a source call was running or waiting to retry.

    Not a `SourceError`: a stopped run is no evidence about the source, so nothing may record it as a
    source failure (a metrics fallback, an incomplete inventory).
    """


class RetryBudget:
    """The time one run may spend retrying its sources, shared by every client and worker thread.

    The deadline is fixed when the budget is made (once per run), so requests late in a run get less
    patience than early ones rather than each call starting a fresh allowance. `clock` and `sleep` are
    injectable so tests can walk through minutes of backoff without waiting; the default sleep waits on the
    cancel event, so `cancel()` ends every wait at once.
    """

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not 0 <= seconds <= MAX_RETRY_BUDGET_SECONDS:
            raise ValueError(f"a retry budget must be 0-{MAX_RETRY_BUDGET_SECONDS:g} s, got {seconds}")
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._cancelled = threading.Event()
        self._deadline = clock() + seconds

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else f"{self.remaining():.1f}s left"
        return f"RetryBudget({self.seconds:g}s, {state})"

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def cancel(self) -> None:
        """Stop every retry loop on this budget now; called when the run is interrupted or terminated."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise `RetryCancelled` once the run was told to stop, so no new request starts after that."""
        if self.cancelled:
            raise RetryCancelled("the run was stopped; no further source requests are made")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if cancelled meanwhile, in which case `RetryCancelled` is raised."""
        self.check()
        if self._sleep is None:
            self._cancelled.wait(max(0.0, seconds))
        else:
            self._sleep(seconds)
        self.check()


# -- classification ---------------------------------------------------------------------------------------


def transient_response(status: int, *, body_readable: bool = True) -> bool:
    """Whether another try may get a different answer than this HTTP response.

    By status: 408, 425, 429 and 5xx pass; any other 4xx says our request is wrong and stays wrong. A
    success whose body is not JSON was cut short or mangled on the way (a dropped connection, a proxy's
    error page), so it is worth another try too; a body that is JSON but of the wrong shape is not.
    """
    if status in TRANSIENT_STATUSES or 500 <= status <= 599:
        return True
    return 200 <= status <= 299 and not body_readable


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: requests wraps urllib3, which keeps the socket error as `reason`
    or `__context__`, and the layers vary by failure and version, so the whole chain is searched."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


_TLS = (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
_NEVER_CONNECTED = (
    urllib3.exceptions.NewConnectionError,  # refused, unreachable; NameResolutionError is one too
    socket.gaierror,
    ConnectionRefusedError,
)
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
_DROPPED = (
    requests.exceptions.ChunkedEncodingError,  # the body stopped short
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,  # "Connection aborted." around the socket error
    http.client.IncompleteRead,
    ConnectionResetError,  # RemoteDisconnected is one: the server hung up before answering
    ConnectionAbortedError,
    BrokenPipeError,
)


def transient_request_error(error: BaseException) -> bool:
    """Whether a request that raised (rather than answered) may succeed if tried again.

    Order matters: urllib3's `NewConnectionError` subclasses its `ConnectTimeoutError`, so "never
    connected" is decided before "timed out". A connection that was refused, a name that does not resolve
    or a TLS handshake that fails will fail the same way next time: those are configuration, not weather.
    A timeout (connect or read, also when requests reports a body read timeout as a ConnectionError) or a
    connection that dropped after it was made are worth another try. Anything unrecognized is not retried.
    """
    chain = list(_causes(error))
    if any(isinstance(item, _TLS) for item in chain):
        return False
    if any(isinstance(item, _NEVER_CONNECTED) for item in chain):
        return False
    return any(isinstance(item, _TIMEOUTS + _DROPPED) for item in chain)


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """The server's own idea of how long to wait, in seconds; None when it gave none we can read.

    `Retry-After` is taken exactly (only its seconds form). Confluent sends `X-RateLimit-Reset` as relative
    seconds, not an epoch (ccloud-api.md §0), and the IETF draft spells it `RateLimit-Reset`; being rounded
    down, they are floored at one second. `requests` looks headers up case-insensitively.
    """
    for name, floor in (
        ("Retry-After", 0.0),
        ("RateLimit-Reset", RATE_LIMIT_RESET_FLOOR_SECONDS),
        ("X-RateLimit-Reset", RATE_LIMIT_RESET_FLOOR_SECONDS),
    ):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return max(floor, value)
    return None


# -- the retry loop ---------------------------------------------------------------------------------------


def _retry_transient(state: tenacity.RetryCallState) -> bool:
    error = state.outcome.exception() if state.outcome is not None else None
    return isinstance(error, SourceError) and error.transient


class _stop_at_budget(tenacity.stop.stop_base):
    """Stop when cancelled, when the budget is spent, or when the server's wait would pass the deadline."""

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        remaining = self.budget.remaining()
        return self.budget.cancelled or remaining <= 0 or state.upcoming_sleep > remaining


class _wait_hint_or_backoff(tenacity.wait.wait_base):
    """The server's hint when it gave one, else capped exponential backoff with jitter fitted to the budget.

    A hint is not shortened: retrying before the server said it would answer only spends an attempt, so a
    hint past the deadline stops the loop instead (`_stop_at_budget`). Our own backoff is ours to shorten,
    so its last wait ends at the deadline and the budget is used in full.
    """

    def __init__(self, budget: RetryBudget, cap_seconds: float) -> None:
        self.budget = budget
        self.backoff = tenacity.wait_exponential_jitter(multiplier=1.0, max=cap_seconds, jitter=1.0)

    def __call__(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hint = error.retry_after if isinstance(error, SourceError) else None
        if hint is not None:
            return hint
        return min(self.backoff(state), self.budget.remaining())


@dataclass(frozen=True, slots=True)
class SourceRetry:
    """How one client retries: its budget and attempt cap, and who it is for the warning each retry logs.

    `max_attempts` counts the first try; `cap_seconds` bounds our own backoff (never a server's hint).
    """

    budget: RetryBudget
    tenant: str
    source: str
    host: str
    max_attempts: int
    cap_seconds: float

    def call(self, what: str, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it returns, raises anything but a transient `SourceError`, or must stop.

        `what` (an endpoint path, a query key) names the call in the warning logged before each wait. When
        the loop stops on a transient error, that error surfaces as it is, `transient` still set: the caller
        learns the source gave up on a passing fault, not a permanent one. A cancelled budget raises
        `RetryCancelled` instead, before any further request.
        """

        def warn(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "tenant %r, source %s, host %s, %s: attempt %d failed (%s); retrying in %.2fs, "
                "%.1fs of the run's retry budget left",
                self.tenant,
                self.source,
                self.host,
                what,
                state.attempt_number,
                error,
                state.upcoming_sleep,
                self.budget.remaining(),
            )

        retrying = tenacity.Retrying(
            retry=_retry_transient,
            stop=tenacity.stop_after_attempt(max(1, self.max_attempts)) | _stop_at_budget(self.budget),
            wait=_wait_hint_or_backoff(self.budget, self.cap_seconds),
            sleep=self.budget.sleep,
            before=lambda _state: self.budget.check(),
            before_sleep=warn,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except SourceError:
            self.budget.check()
            raise
