"""The Prometheus metrics source shared by every ecosystem, and the fold of its rows into daily usage.

A query template holds `{}` where the resource filter goes (`{kafka_id="lkc-1"}`) and `$step` for the
step as a duration (`3600s`). For a half-open window `[S, E)` and step N the range query
runs from `S+N-0.001` to `E-0.001`, so with Prometheus 2.x's inclusive `[t-N, t]` ranges each step covers
exactly `[S+(k-1)N, S+kN)` and a sample on `E` is counted in the next window only. An unreachable or failing
Prometheus raises `MetricsQueryError`: it is never reported as "no usage" (DESIGN.md §3.8). Retries go through
`retry.py`, whose classification decides whether the error is `transient`. Text quoted from a response or an
HTTP library is scrubbed of every form of the credentials (redaction.py) before it is cut to length.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any, TypeVar

import requests

from chargeback_assets.ecosystems.base import (
    LONE_SURROGATE,
    SourceError,
    json_body,
    lone_surrogate_in,
    origin,
)
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.ecosystems.retry import (
    DEFAULT_RETRY_BUDGET_SECONDS,
    RetryBudget,
    SourceRetry,
    transient_request_error,
    transient_response,
    wait_hint,
)
from chargeback_assets.engine.models import UTC, MetricQuery, MetricRow, UsageRecord, Window
from chargeback_assets.redaction import remember_basic_credentials, scrub

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

SOURCE = "prometheus"
BACKOFF_CAP_SECONDS = 30.0


class MetricsQueryError(SourceError):
    """A range query failed; names tenant, host, query key and status, never credentials."""

    def __init__(
        self,
        tenant: str,
        host: str,
        query_key: str,
        status: int | None,
        detail: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        shown = status if status is not None else "no response"
        super().__init__(
            f"Prometheus query {query_key!r} for tenant {tenant!r} at {host} failed "
            f"(status {shown}): {detail}",
            tenant=tenant,
            source=SOURCE,
            host=host,
            transient=transient,
            retry_after=retry_after,
        )
        self.query_key = query_key
        self.status = status

    def __repr__(self) -> str:
        return f"MetricsQueryError({self.args[0]!r})"


def _cut(text: object, length: int) -> str:
    """Server or library text, scrubbed of secrets before it is cut: a secret split at the cut would no
    longer be recognized (MetricsQueryError scrubs its whole message again)."""
    return scrub(str(text))[:length]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_query(query: MetricQuery, step_seconds: int, resource_id: str | None) -> str:
    """Fill `{}` with the resource filter (or nothing) and `$step` with the step in seconds."""
    if resource_id is not None and query.resource_label:
        selector = f'{{{query.resource_label}="{_label_value(resource_id)}"}}'
    else:
        selector = ""
    return query.query_expression.replace("{}", selector).replace("$step", f"{step_seconds}s")


def _step_start(evaluated_at: Any, step_seconds: int) -> datetime:
    """The start of the step a point evaluated at `t = S + kN - 0.001` covers, i.e. `S + (k-1)N`."""
    end_ms = round(float(evaluated_at) * 1000) + 1
    return datetime.fromtimestamp((end_ms - step_seconds * 1000) / 1000, tz=UTC)


class PrometheusMetricsSource:
    """`MetricsSource` over the Prometheus HTTP API (`POST /api/v1/query_range`)."""

    def __init__(
        self,
        settings: PrometheusSettings,
        tenant: str,
        session: requests.Session | None = None,
        *,
        budget: RetryBudget | None = None,
    ) -> None:
        self.settings = settings
        self.tenant = tenant
        self.budget = budget or RetryBudget(DEFAULT_RETRY_BUDGET_SECONDS)
        self.host = origin(settings.url)
        self._session = session or requests.Session()
        self._endpoint = settings.url.rstrip("/") + "/api/v1/query_range"
        self._retry = SourceRetry(
            self.budget,
            tenant,
            SOURCE,
            self.host,
            max_attempts=settings.max_attempts,
            cap_seconds=BACKOFF_CAP_SECONDS,
        )
        if settings.auth_type == "basic":
            password = settings.password.reveal() if settings.password else ""
            self._session.auth = (settings.username or "", password)
            remember_basic_credentials(settings.username or "", password)
        elif settings.auth_type == "bearer":
            token = settings.bearer_token.reveal() if settings.bearer_token else ""
            self._session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"PrometheusMetricsSource(url={self.settings.url!r}, tenant={self.tenant!r})"

    def close(self) -> None:
        self._session.close()

    def query_range(
        self, query: MetricQuery, window: Window, step_seconds: int, resource_id: str | None
    ) -> list[MetricRow]:
        """Rows of the half-open `window`, one per series and step that had samples."""
        data = self._matrix(query, window, step_seconds, resource_id)
        return [
            MetricRow(start, query.key, value, labels)
            for labels, points in self._series(query, data, step_seconds)
            for start, value in points
        ]

    def usage_by_day(
        self, query: MetricQuery, window: Window, step_seconds: int, resource_id: str
    ) -> dict[date, list[UsageRecord]]:
        """Each UTC day's `summarize_usage` of the rows `query_range` gives, for the days with usage."""
        return daily_usage(
            query, self._matrix(query, window, step_seconds, resource_id), step_seconds, resource_id
        )

    def _matrix(self, query: MetricQuery, window: Window, step_seconds: int, resource_id: str | None) -> Any:
        span = round(window.seconds)
        if step_seconds <= 0 or span <= 0 or span % step_seconds:
            raise ValueError(f"step {step_seconds}s must be positive and divide the window of {span}s")
        start = window.start.timestamp()
        form = {
            "query": render_query(query, step_seconds, resource_id),
            "start": f"{start + step_seconds - 0.001:.3f}",
            "end": f"{start + span - 0.001:.3f}",
            "step": str(step_seconds),
        }
        data = self._post(query.key, form)
        if (
            not isinstance(data, dict)
            or data.get("resultType") != "matrix"
            or not isinstance(data.get("result"), list)
        ):
            raise self._error(query.key, 200, f"expected a matrix result, got {_cut(data, 200)}")
        return data

    def _post(self, key: str, form: dict[str, str]) -> Any:
        def attempt() -> Any:
            try:
                response = self._session.post(
                    self._endpoint, data=form, timeout=self.settings.timeout_seconds
                )
            except requests.RequestException as exc:
                detail = (
                    "the request timed out"
                    if isinstance(exc, requests.Timeout)
                    else f"{type(exc).__name__}: {_cut(exc, 200)}"
                )
                raise self._error(key, None, detail, transient=transient_request_error(exc)) from None
            status = response.status_code
            body = self._json(response)
            if status >= 400 or body is None:
                raise self._error(
                    key,
                    status,
                    self._detail(body, response),
                    transient=transient_response(status, body_readable=body is not None),
                    retry_after=wait_hint(response.headers),
                )
            if not isinstance(body, dict) or body.get("status") != "success":
                raise self._error(key, status, self._detail(body, response))
            where = lone_surrogate_in(response.content, body)
            if where is not None:
                raise self._error(key, status, f"{where} {LONE_SURROGATE}")
            return body.get("data")

        return self._retry.call(key, attempt)

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return json_body(response)
        except ValueError:
            return None

    @staticmethod
    def _detail(body: Any, response: requests.Response) -> str:
        if isinstance(body, dict) and body.get("status") == "error":
            return _cut(f"{body.get('errorType', 'error')}: {body.get('error', '')}", 300)
        if body is None:
            return f"the response is not JSON: {_cut(response.text, 120)!r}"
        return f"unexpected response: {_cut(body, 200)}"

    def _error(
        self,
        key: str,
        status: int | None,
        detail: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> MetricsQueryError:
        return MetricsQueryError(
            self.tenant, self.host, key, status, detail, transient=transient, retry_after=retry_after
        )

    @staticmethod
    def _series(
        query: MetricQuery, data: Any, step_seconds: int
    ) -> Iterator[tuple[dict[str, str], list[tuple[datetime, float]]]]:
        """Each series' labels (those of `query.label_keys`) and its readable, finite points as (step start,
        value); any other point is skipped with a warning."""
        starts: dict[Any, datetime] = {}  # every series repeats the same step timestamps: convert each once
        for series in data["result"]:
            metric = series.get("metric") or {}
            labels = {k: str(metric[k]) for k in query.label_keys if k in metric}
            points = []
            for timestamp, value in _readable(query, series.get("values") or []):
                start = starts.get(timestamp)
                if start is None:
                    start = starts[timestamp] = _step_start(timestamp, step_seconds)
                points.append((start, value))
            yield labels, points


def summarize_usage(rows: Iterable[MetricRow], query: MetricQuery, resource_id: str) -> list[UsageRecord]:
    """A window's usage per subject of one resource: the exact sum of every positive sample.

    Summing every step (not the last one) is what makes bursty principals count (the CCloud export holds
    per-minute deltas). Each float is read as `Decimal(str(value))` so 0.1 stays 0.1, and summed without
    rounding (`exact_sums`). Zero and negative samples are left out (a negative delta is a counter artifact,
    not negative usage), so a subject with no positive usage gets no record. Rows of other queries or of
    other resources are ignored.
    """
    key, resource_label, subject_label = query.key, query.resource_label, _subject_label(query)
    values = []
    for row in rows:
        if row.metric_key != key or row.value <= 0:
            continue
        subject = _subject_of(row.labels, resource_label, subject_label, resource_id)
        if subject:
            values.append((subject, row.value))
    totals = exact_sums(values)
    return [UsageRecord(resource_id, query.key, subject, totals[subject]) for subject in sorted(totals)]


def _subject_of(
    labels: Mapping[str, str], resource_label: str | None, subject_label: str, resource_id: str
) -> str | None:
    """Whom labels charge on `resource_id`: their subject, unless they name another resource."""
    if resource_label and labels.get(resource_label, resource_id) != resource_id:
        return None
    return labels.get(subject_label)


def _subject_label(query: MetricQuery) -> str:
    if not query.subject_label:
        raise ValueError(f"query {query.key!r} has no subject_label; usage cannot be attributed")
    return query.subject_label


def daily_usage(
    query: MetricQuery, data: Any, step_seconds: int, resource_id: str
) -> dict[date, list[UsageRecord]]:
    """`usage_by_day` of a decoded range-query reply: what `summarize_usage` makes of each day's rows.

    Summed straight from the reply, without a row or a float per sample: a month of a large cluster is
    millions of samples, nearly all byte counts. A series whose samples are all such counts is summed a day
    at a time (`_whole_counts_by_day`); any other series is read point by point, as `summarize_usage`
    reads rows, warnings included. A series whose labels charge nobody on the resource is not read at all.
    """
    subject_label, resource_label = _subject_label(query), query.resource_label
    days: dict[Any, date] = {}  # every series repeats the same step timestamps: convert each once

    def day_of(timestamp: Any) -> date:
        day = days.get(timestamp)
        if day is None:
            day = days[timestamp] = _step_start(timestamp, step_seconds).date()
        return day

    whole: dict[tuple[date, str], int] = {}
    rest: list[tuple[tuple[date, str], float]] = []
    for series in data["result"]:
        metric = series.get("metric") or {}
        labels = {k: str(metric[k]) for k in query.label_keys if k in metric}
        subject = _subject_of(labels, resource_label, subject_label, resource_id)
        if not subject:
            continue
        points = series.get("values") or []
        counts = _whole_counts_by_day(points, day_of)
        if counts is not None:
            for day, count in counts.items():
                if count:
                    whole[day, subject] = whole.get((day, subject), 0) + count
            continue
        for timestamp, value in _readable(query, points):
            if value > 0:
                rest.append(((day_of(timestamp), subject), value))
    usage: dict[date, list[UsageRecord]] = {}
    for (day, subject), total in sorted(exact_sums(rest, whole).items()):
        usage.setdefault(day, []).append(UsageRecord(resource_id, query.key, subject, total))
    return usage


def _readable(query: MetricQuery, points: Iterable[Any]) -> Iterator[tuple[Any, float]]:
    """(timestamp, value) of each readable, finite sample; any other is skipped with a warning."""
    for point in points:
        try:
            timestamp, raw = point
            value = float(raw)
        except (TypeError, ValueError):
            log.warning("query %s: skipping unreadable sample %r", query.key, point)
            continue
        if not math.isfinite(value):
            log.warning("query %s: skipping non-finite sample %r", query.key, point)
            continue
        yield timestamp, value


def _whole_counts_by_day(points: list[Any], day_of: Callable[[Any], date]) -> dict[date, int] | None:
    """A series' samples summed per day as integers, when every sample is a whole number below 10**15 written
    in decimal digits and the timestamps are numbers in order (a reply of byte counts); None otherwise.

    Such a sample is below 2**53, so its integer is exactly what reading it as a float and summing whole
    floats as integers (`exact_sums`) gives. The series is checked and summed in a few comprehensions and
    C built-ins over all of it, with the day boundaries found by bisection, instead of a loop of branches,
    float conversions and dictionary updates per sample.
    """
    try:
        stamps = [stamp for stamp, _ in points]
        texts = [text for _, text in points]
        if not texts or not "".join(texts).isdecimal():
            return None
        values = list(map(int, texts))  # an empty text raises
        if max(values) >= 10**15 or not set(map(type, stamps)) <= {int, float} or stamps != sorted(stamps):
            return None
    except (TypeError, ValueError):  # a point that is not a pair, a sample that is not text
        return None
    counts: dict[date, int] = {}
    start = 0
    while start < len(stamps):
        day = day_of(stamps[start])
        end = bisect_right(stamps, day, lo=start, key=day_of)
        counts[day] = sum(values[start:end])
        start = end
    return counts


EXACT_DIGITS = 800
"""Enough significant digits for any sum of `Decimal(str(value))` to be exact: each has at most 17 significant
digits, between 5e-324 and 1.8e308, so a sum spans at most about 650 digits."""


def exact_sums(values: Iterable[tuple[K, float]], whole: Mapping[K, int] | None = None) -> dict[K, Decimal]:
    """Each key's exact sum of `Decimal(str(value))`, to the digit and exponent; `whole` holds sums of
    whole samples already added up as integers (`daily_usage`).

    Whole values below 1e16 (whose `str` is "N.0": byte counts, nearly every sample) are summed as
    integers and the rest as Decimals, with every digit kept; the total is the number, with the exponent,
    that adding them one by one from `Decimal(0)` without rounding gives, at a fraction of the cost.
    """
    counts: dict[K, int] = dict(whole or {})
    rest: dict[K, Decimal] = {}
    nothing = Decimal(0)
    with localcontext(prec=EXACT_DIGITS):
        for key, value in values:
            if value.is_integer() and -1e16 < value < 1e16:
                counts[key] = counts.get(key, 0) + int(value)
            else:
                rest[key] = rest.get(key, nothing) + Decimal(str(value))
        totals = dict(rest)
        for key, count in counts.items():
            totals[key] = Decimal(f"{count}.0") + rest.get(key, nothing)
    return totals
