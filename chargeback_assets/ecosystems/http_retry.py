"""Bounded exponential backoff with jitter, shared by every HTTP client of the ecosystems.

One piece of code decides how long to wait and when to give up, so the Confluent Cloud REST client and the
Prometheus metrics source cannot drift apart. An attempt signals a transient failure by raising `Retryable`
with the error to surface if the budget runs out and, optionally, the server's own wait hint.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Sleep = Callable[[float], None]


class Retryable(Exception):
    """A transient failure of one attempt; `error` is raised as-is when no attempt is left."""

    def __init__(self, error: Exception, wait_hint: float | None = None, hint_is_exact: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_hint = wait_hint
        self.hint_is_exact = hint_is_exact


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry number `attempt` (0-based).

    Without a hint the wait is `base * 2**attempt`. A server hint replaces it but is floored at
    `floor_seconds` (rate-limit reset headers round down and a zero would hammer the server) unless the hint
    is exact (`Retry-After` is the server telling us precisely how long). The result is multiplied by a jitter
    factor so that parallel clients spread out, then capped.
    """

    base_seconds: float = 1.0
    floor_seconds: float = 1.0
    cap_seconds: float = 60.0
    jitter: tuple[float, float] = (1.1, 1.2)

    def delay(
        self, attempt: int, rng: random.Random, hint: float | None = None, exact: bool = False
    ) -> float:
        if hint is None:
            wait = max(self.floor_seconds, self.base_seconds * (2**attempt))
        elif exact:
            wait = max(0.0, hint)
        else:
            wait = max(self.floor_seconds, hint)
        return min(self.cap_seconds, wait * rng.uniform(*self.jitter))


def rate_limit_hint(headers: Mapping[str, str]) -> tuple[float | None, bool]:
    """The server's wait hint in seconds and whether it is exact (`Retry-After`).

    Confluent sends `X-RateLimit-Reset` as relative seconds, not an epoch (ccloud-api.md §0); the IETF draft
    spells it `RateLimit-Reset`. Header lookup is case-insensitive in `requests`, so `rateLimit-reset` is the
    same header. Unparsable values are ignored rather than trusted.
    """
    for name, exact in (("Retry-After", True), ("RateLimit-Reset", False), ("X-RateLimit-Reset", False)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if value == value and value not in (float("inf"), float("-inf")):
            return value, exact
    return None, False


def call_with_retries(
    attempt: Callable[[], T],
    *,
    max_attempts: int,
    backoff: Backoff,
    rng: random.Random | None = None,
    sleep: Sleep = time.sleep,
    on_retry: Callable[[int, float, Exception], None] | None = None,
) -> T:
    """Run `attempt` until it returns, raises a non-`Retryable` error, or `max_attempts` are used up."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    rng = rng or random.Random()
    for number in range(max_attempts):
        try:
            return attempt()
        except Retryable as failure:
            if number == max_attempts - 1:
                raise failure.error from None
            wait = backoff.delay(number, rng, failure.wait_hint, failure.hint_is_exact)
            if on_retry is not None:
                on_retry(number + 1, wait, failure.error)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
