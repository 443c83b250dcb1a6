"""Inventory discovery from recent metrics: which label values (principals, brokers, topics) exist now.

Discovery looks back over a recent window ending at the gather time, one step per hour, so a series seen
anywhere in that window counts. The clock is injected so a gather can be replayed at a fixed time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from chargeback_assets.ecosystems.base import MetricsSource
from chargeback_assets.engine.models import MetricQuery, MetricRow, Window

Clock = Callable[[], datetime]
DISCOVERY_STEP_SECONDS = 3600


def utc_now() -> datetime:
    return datetime.now(UTC)


def discover(metrics: MetricsSource, query: MetricQuery, hours: int, now: datetime) -> list[MetricRow]:
    """Rows of `query` over the `hours` before `now` (whole seconds). Raises SourceError."""
    end = now.replace(microsecond=0)
    window = Window(end - timedelta(hours=hours), end)
    return metrics.query_range(query, window, DISCOVERY_STEP_SECONDS, None)


def label_values(rows: Iterable[MetricRow], label: str) -> set[str]:
    """Distinct non-blank values of `label`."""
    return {value for row in rows if (value := row.labels.get(label, "")).strip()}
