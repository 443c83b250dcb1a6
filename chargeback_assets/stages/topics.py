"""Topic attribution for one tenant: each cluster's topic metrics, then its cost lines split over topics.

Only a tenant whose ecosystem offers the overlay and that enabled it (`runtime.topics`) gets rows; for any
other tenant both stages replace the day with nothing, so a tenant that turns the overlay off keeps no stale
topic rows. Metrics follow the usage stage's rules: a permanent source error fails the partition; a transient
one that outlived the run's retries is recorded per cluster and its lines fall back, visibly
(`metrics_fetch_failed`), to `missing_metrics_behavior`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from chargeback_assets.ecosystems.base import SourceError, TopicOverlay
from chargeback_assets.ecosystems.prometheus import summarize_usage
from chargeback_assets.engine.models import (
    DEFAULT_CURRENCY,
    MetricRow,
    UsageRecord,
    Window,
    currency_of,
    day_start,
)
from chargeback_assets.engine.money import ZERO
from chargeback_assets.engine.topics import (
    TOPIC_ACTIVE_STEPS,
    DayTopicAttribution,
    TopicLinePlan,
    active_steps,
    attribute_day,
)
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.usage import contiguous_runs
from chargeback_assets.storage.billing import (
    allocation_attempts,
    billing_for_day,
    increment_allocation_attempts,
)
from chargeback_assets.storage.pipeline import update_state
from chargeback_assets.storage.topics import (
    replace_topic_attribution_day,
    replace_topic_metrics_day,
    topic_metrics_for_day,
)

COUNTER = "topic_attribution_attempts"


@dataclass(slots=True)
class TopicMetricsDay:
    day: date
    enabled: bool = False
    clusters: int = 0
    topics: int = 0
    records: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def cluster_days(scope: TenantScope, overlay: TopicOverlay, days: Sequence[date]) -> dict[str, set[date]]:
    """Cluster id -> the days it has a line the overlay splits (disabled mappings need no metrics)."""
    wanted: dict[str, set[date]] = defaultdict(set)
    for day in days:
        for line in billing_for_day(scope.db, scope.ecosystem, scope.tenant_id, day):
            mapping = overlay.mapping(line.product_type)
            if mapping is not None and mapping != "disabled":
                wanted[line.resource_id].add(day)
    return wanted


@collector_paused()
def fetch_topic_metrics(scope: TenantScope, days: Sequence[date]) -> list[TopicMetricsDay]:
    """The days' topic metrics per cluster, one range query per (cluster, metric, run of days)."""
    ordered = sorted(set(days))
    overlay, metrics = scope.runtime.topics, scope.runtime.metrics
    outcome = {day: TopicMetricsDay(day, enabled=overlay is not None) for day in ordered}
    records: dict[date, list[UsageRecord]] = defaultdict(list)
    if overlay is not None and metrics is not None:
        step = scope.runtime.metrics_step_seconds
        for cluster, needed in sorted(cluster_days(scope, overlay, ordered).items()):
            for run in contiguous_runs(sorted(needed)):
                window = Window(day_start(run[0]), day_start(run[-1] + timedelta(days=1)))
                by_day: dict[date, list[MetricRow]] = defaultdict(list)
                try:
                    for query in overlay.queries:
                        for row in metrics.query_range(query, window, step, cluster):
                            by_day[row.timestamp.date()].append(row)
                except SourceError as exc:
                    if not exc.transient:
                        raise scope.fail("topic metrics source", run, exc) from exc
                    for day in run:
                        outcome[day].failures[cluster] = str(exc)
                    continue
                for day in run:
                    rows = by_day.get(day, [])
                    for query in overlay.queries:
                        records[day].extend(summarize_usage(rows, query, cluster))
                    records[day].extend(
                        UsageRecord(cluster, TOPIC_ACTIVE_STEPS, topic, steps)
                        for topic, steps in active_steps(rows).items()
                    )
    for day in ordered:
        day_records = records[day]
        outcome[day].records = len(day_records)
        outcome[day].clusters = len({r.resource_id for r in day_records})
        outcome[day].topics = len({(r.resource_id, r.subject) for r in day_records})
        with scope.db.transaction() as tx:
            replace_topic_metrics_day(
                tx, scope.ecosystem, scope.tenant_id, day, day_records, outcome[day].failures
            )
    return list(outcome.values())


@dataclass(slots=True)
class TopicDay:
    day: date
    enabled: bool = False
    lines: int = 0
    rows: int = 0
    attributed: Decimal = ZERO
    cluster_cost: Decimal = ZERO
    by_status: dict[str, int] = field(default_factory=dict)
    by_topic: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    currency: str = DEFAULT_CURRENCY

    def top_topics(self, count: int = 10) -> list[tuple[str, str, Decimal]]:
        ranked = sorted(self.by_topic.items(), key=lambda item: (-item[1], item[0]))
        return [(cluster, topic, amount) for (cluster, topic), amount in ranked[:count]]


@collector_paused()
def attribute_topics_day(scope: TenantScope, day: date) -> TopicDay:
    """Split the day's cluster lines over topics and replace the day's topic rows in one transaction.

    Failed attempts are committed on their own first, so they count even if the write fails; a line that
    reaches `topic_attribution_retry_limit` is recorded as FAILED (its cost on UNATTRIBUTED), so the day
    always settles.
    """
    overlay = scope.runtime.topics
    lines = billing_for_day(scope.db, scope.ecosystem, scope.tenant_id, day)
    outcome = DayTopicAttribution()
    if overlay is not None:
        clusters = topic_metrics_for_day(scope.db, scope.ecosystem, scope.tenant_id, day)
        plans = [
            TopicLinePlan(line, mapping, clusters.get(line.resource_id))
            for line in lines
            if (mapping := overlay.mapping(line.product_type)) is not None
        ]
        outcome = attribute_day(
            plans,
            excluded=overlay.excluded,
            missing_metrics=overlay.missing_metrics_behavior,
            prior_attempts=allocation_attempts(scope.db, scope.ecosystem, scope.tenant_id, day, COUNTER),
            retry_limit=scope.tenant.topic_attribution_retry_limit,
        )
    if outcome.failed_attempts:
        with scope.db.transaction() as tx:
            increment_allocation_attempts(
                tx, scope.ecosystem, scope.tenant_id, outcome.failed_attempts, COUNTER
            )
    with scope.db.transaction() as tx:
        written = replace_topic_attribution_day(tx, scope.ecosystem, scope.tenant_id, day, outcome.lines)
        update_state(tx, scope.ecosystem, scope.tenant_id, day, topic_attribution_calculated=True)
    result = TopicDay(day, enabled=overlay is not None, lines=len(outcome.lines), rows=written)
    result.currency = currency_of([a.line for a in outcome.lines]) if outcome.lines else DEFAULT_CURRENCY
    for attribution in outcome.lines:
        status = attribution.status.value
        result.by_status[status] = result.by_status.get(status, 0) + 1
        result.cluster_cost += attribution.line.total_cost
        result.attributed += attribution.attributed
        for row in attribution.rows:
            key = (attribution.line.resource_id, row.topic)
            result.by_topic[key] = result.by_topic.get(key, ZERO) + row.amount
    return result
