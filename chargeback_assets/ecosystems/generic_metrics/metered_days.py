"""A cost source for ecosystems priced from Prometheus metrics: fetch days of metrics, price each day.

Days are UTC-midnight windows `[D, D+1)`. All the days asked for are fetched with one range query per metric
(the batch) and the rows are cut into days by their timestamp, half-open, so a sample exactly at midnight
belongs to the day it opens. If the batch fails, each day is fetched on its own (1 + N fetches) so one bad
day does not cost the others. A day whose fetch failed is never priced as "no usage" (DESIGN.md §3.8):
`gather` raises `IncompleteBilling`, a SourceError that still carries the lines of the days that did
succeed, so a caller that writes per day can keep those and fail only the missing ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from chargeback_assets.ecosystems.base import IncompleteBilling, MetricsSource, SourceError
from chargeback_assets.engine.models import BillingLine, MetricQuery, MetricRow, Window

log = logging.getLogger(__name__)

PriceDay = Callable[[Sequence[MetricRow], Window], list[BillingLine]]
"""A pure cost model: one day's rows -> that day's billing lines (none when the day is skipped)."""


def day_windows(start: date, end: date) -> list[Window]:
    return [Window.for_day(start + timedelta(days=offset)) for offset in range((end - start).days)]


@dataclass(slots=True)
class MeteredDays:
    """The rows of each day that could be fetched, and the days that could not."""

    rows: dict[Window, list[MetricRow]] = field(default_factory=dict)
    failed: dict[date, str] = field(default_factory=dict)


def _fetch(
    metrics: MetricsSource, queries: Sequence[MetricQuery], window: Window, step_seconds: int
) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for query in queries:
        rows.extend(metrics.query_range(query, window, step_seconds, None))
    return rows


def _slice(rows: Iterable[MetricRow], days: Sequence[Window]) -> dict[Window, list[MetricRow]]:
    by_day: dict[Window, list[MetricRow]] = {day: [] for day in days}
    first = days[0].start
    for row in rows:
        index = (row.timestamp - first) // timedelta(days=1)
        if 0 <= index < len(days):
            by_day[days[index]].append(row)
    return by_day


def fetch_metered_days(
    metrics: MetricsSource,
    queries: Sequence[MetricQuery],
    start: date,
    end: date,
    step_seconds: int,
) -> MeteredDays:
    """Rows per day for `[start, end)`: one batch, then day by day if the batch fails.

    Without queries (a cost model of fixed quantities only) nothing is fetched and every day has no rows.
    A single-day batch that fails is not asked again: the per-day fetch would be the same query.
    """
    days = day_windows(start, end)
    if not days or not queries:
        return MeteredDays(rows={day: [] for day in days})
    try:
        return MeteredDays(
            rows=_slice(_fetch(metrics, queries, Window(days[0].start, days[-1].end), step_seconds), days)
        )
    except SourceError as error:
        if len(days) == 1:
            return MeteredDays(failed={days[0].start.date(): str(error)})
        log.warning("batched metrics fetch for %s..%s failed (%s); fetching day by day", start, end, error)
    outcome = MeteredDays()
    for day in days:
        try:
            outcome.rows[day] = _fetch(metrics, queries, day, step_seconds)
        except SourceError as error:
            outcome.failed[day.start.date()] = str(error)
    return outcome


@dataclass(slots=True)
class MeteredCostSource:
    """`CostSource` over metered days; `source` names the ecosystem in errors."""

    metrics: MetricsSource
    queries: Sequence[MetricQuery]
    price_day: PriceDay
    step_seconds: int
    tenant: str
    source: str

    def gather(self, start: date, end: date) -> list[BillingLine]:
        fetched = fetch_metered_days(self.metrics, self.queries, start, end, self.step_seconds)
        lines = [
            line
            for day, rows in sorted(fetched.rows.items(), key=lambda item: item[0].start)
            for line in self.price_day(rows, day)
        ]
        if fetched.failed:
            failures = "; ".join(
                f"{day.isoformat()}: {error}" for day, error in sorted(fetched.failed.items())
            )
            raise IncompleteBilling(
                f"tenant {self.tenant}: {self.source} cost source could not fetch metrics for {failures}",
                tenant=self.tenant,
                source=self.source,
                lines=lines,
                failed_days=sorted(fetched.failed),
            )
        return lines
