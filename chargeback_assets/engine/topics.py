"""Topic attribution: a Kafka cluster's cost lines split over its topics, exactly.

An overlay beside the chargeback: it answers "which topics make this cluster expensive?", not "who pays".
Each cluster line is split by its mapping: network by the topics' bytes in the line's direction, storage by
retained bytes, CKU/partition/base lines as configured. `even_split` weighs each topic by the steps of the
day it had metrics in, so a topic created at noon gets half a share; over topics that lived all day it is
an even split. Internal topics matching the exclude patterns never get cost, and their bytes are left out of
the ratios. A line whose metrics are missing is either split evenly over the topics seen that day (or booked
to UNATTRIBUTED when there are none) or skipped, as configured; either way the line says why.

Topic rows of a line always sum to the line's cost, or to zero for a disabled or skipped line, which is
recorded as such. Topics are sorted before every split, so the rounding remainder lands on the same topics
whatever order Prometheus returned them in (DESIGN §3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from chargeback_assets.engine.calculate import ReconciliationError, with_retries
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import BillingLine, MetricRow
from chargeback_assets.engine.money import ZERO, ratio_split

UNATTRIBUTED_TOPIC = "UNATTRIBUTED"
"""Where a line's cost goes when no topic can carry it (no topics seen, or attribution kept failing)."""

TOPIC_BYTES_IN = "topic_bytes_in"
TOPIC_BYTES_OUT = "topic_bytes_out"
TOPIC_RETAINED_BYTES = "topic_retained_bytes"
TOPIC_ACTIVE_STEPS = "topic_active_steps"
"""Not a Prometheus query: how many metric steps of the day each topic had a sample in (any metric)."""

TOPIC_METRIC_KEYS = (TOPIC_BYTES_IN, TOPIC_BYTES_OUT, TOPIC_RETAINED_BYTES)


class TopicMapping(StrEnum):
    BYTES_RATIO = "bytes_ratio"
    RETAINED_BYTES_RATIO = "retained_bytes_ratio"
    EVEN_SPLIT = "even_split"
    DISABLED = "disabled"


class MissingMetrics(StrEnum):
    EVEN_SPLIT = "even_split"
    SKIP = "skip"


class TopicStatus(StrEnum):
    ATTRIBUTED = "attributed"
    DISABLED = "disabled"
    SKIPPED = "skipped"
    FAILED = "failed"
    """Kept failing until `topic_attribution_retry_limit`: one UNATTRIBUTED row with the full cost."""


ATTRIBUTION_FAILED = "ATTRIBUTION_FAILED"
TERMINAL = "terminal"

_DIRECTION = {"KAFKA_NETWORK_WRITE": (TOPIC_BYTES_IN,), "KAFKA_NETWORK_READ": (TOPIC_BYTES_OUT,)}
"""Network lines follow their direction; any other line mapped by bytes uses bytes in and out."""


@dataclass(frozen=True, slots=True)
class ClusterTopics:
    """One cluster's topic metrics for a day: metric key -> topic -> value (summed over the day)."""

    metrics: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    fetch_failed: bool = False

    def weights(self, keys: Iterable[str]) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for key in keys:
            for topic, value in self.metrics.get(key, {}).items():
                if value > 0:
                    totals[topic] = totals.get(topic, ZERO) + value
        return totals


@dataclass(frozen=True, slots=True)
class TopicRow:
    topic: str
    amount: Decimal
    method: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class LineAttribution:
    """One cluster line's topic attribution, or why it has none (disabled, skipped)."""

    line: BillingLine
    mapping: str
    status: TopicStatus
    rows: tuple[TopicRow, ...] = ()
    detail: str | None = None

    @property
    def line_id(self) -> str:
        return line_id(self.line)

    @property
    def attributed(self) -> Decimal:
        return sum((row.amount for row in self.rows), ZERO)


def _weight_keys(line: BillingLine, mapping: TopicMapping) -> tuple[str, ...]:
    if mapping is TopicMapping.BYTES_RATIO:
        return _DIRECTION.get(line.product_type, (TOPIC_BYTES_IN, TOPIC_BYTES_OUT))
    if mapping is TopicMapping.RETAINED_BYTES_RATIO:
        return (TOPIC_RETAINED_BYTES,)
    return (TOPIC_ACTIVE_STEPS,)


def _split(total: Decimal, weights: Mapping[str, Decimal], method: str, detail: str | None) -> list[TopicRow]:
    topics = sorted(weights)
    amounts = ratio_split(total, [weights[topic] for topic in topics])
    return [TopicRow(topic, amount, method, detail) for topic, amount in zip(topics, amounts, strict=True)]


def attribute_line(
    line: BillingLine,
    mapping: str,
    cluster: ClusterTopics | None,
    *,
    excluded: Callable[[str], bool],
    missing_metrics: str,
) -> LineAttribution:
    """Split one cluster line over its topics and prove the rows sum to the line (or to zero when none)."""
    how = TopicMapping(mapping)
    if how is TopicMapping.DISABLED:
        return LineAttribution(line, mapping, TopicStatus.DISABLED, detail="cost mapping disabled")
    cluster = cluster or ClusterTopics()
    included = {t: v for t, v in cluster.weights(_weight_keys(line, how)).items() if not excluded(t)}
    if included:
        rows = _split(line.total_cost, included, how.value, None)
        return _proved(LineAttribution(line, mapping, TopicStatus.ATTRIBUTED, tuple(rows)))
    present = {t: v for t, v in cluster.weights((TOPIC_ACTIVE_STEPS,)).items() if not excluded(t)}
    if cluster.fetch_failed:
        reason = "metrics_fetch_failed"
    elif not present:
        reason = "no_topics_located"
    else:
        reason = f"no_{'_'.join(_weight_keys(line, how))}_for_topics"
    if MissingMetrics(missing_metrics) is MissingMetrics.SKIP:
        return LineAttribution(line, mapping, TopicStatus.SKIPPED, detail=reason)
    if present:
        rows = _split(line.total_cost, present, TopicMapping.EVEN_SPLIT.value, reason)
    else:
        rows = [TopicRow(UNATTRIBUTED_TOPIC, line.total_cost, TERMINAL, reason)]
    return _proved(LineAttribution(line, mapping, TopicStatus.ATTRIBUTED, tuple(rows), reason))


def _proved(result: LineAttribution) -> LineAttribution:
    if result.attributed != result.line.total_cost:
        raise ReconciliationError(
            f"topic rows of {result.line.product_type} on {result.line.resource_id} sum to "
            f"{result.attributed}, billed {result.line.total_cost}"
        )
    return result


def failed_line(line: BillingLine, mapping: str, attempts: int, error: str) -> LineAttribution:
    detail = f"Failed after {attempts} attempts: {error}"
    row = TopicRow(UNATTRIBUTED_TOPIC, line.total_cost, ATTRIBUTION_FAILED, detail)
    return LineAttribution(line, mapping, TopicStatus.FAILED, (row,), detail)


@dataclass(frozen=True, slots=True)
class TopicLinePlan:
    line: BillingLine
    mapping: str
    cluster: ClusterTopics | None


@dataclass(slots=True)
class DayTopicAttribution:
    lines: list[LineAttribution] = field(default_factory=list)
    failed_attempts: dict[str, int] = field(default_factory=dict)
    """line id -> failed attempts made now, for the caller to add to the stored counts."""


def attribute_day(
    plans: Sequence[TopicLinePlan],
    *,
    excluded: Callable[[str], bool],
    missing_metrics: str,
    prior_attempts: Mapping[str, int],
    retry_limit: int,
) -> DayTopicAttribution:
    """Every cluster line of a day; a line that keeps failing ends as a FAILED line, never a stuck day."""
    outcome = DayTopicAttribution()
    for plan in plans:
        lid = line_id(plan.line)
        prior = prior_attempts.get(lid, 0)
        result, attempts, error = with_retries(
            lambda plan=plan: attribute_line(  # type: ignore[misc]
                plan.line, plan.mapping, plan.cluster, excluded=excluded, missing_metrics=missing_metrics
            ),
            prior,
            retry_limit,
        )
        outcome.lines.append(result or failed_line(plan.line, plan.mapping, attempts, error))
        if attempts > prior:
            outcome.failed_attempts[lid] = attempts - prior
    return outcome


def active_steps(rows: Iterable[MetricRow], topic_label: str = "topic") -> dict[str, Decimal]:
    """Each topic's count of distinct steps with a positive sample in any of `rows` (one cluster-day)."""
    seen: dict[str, set[object]] = {}
    for row in rows:
        topic = row.labels.get(topic_label)
        if topic and row.value > 0:
            seen.setdefault(topic, set()).add(row.timestamp)
    return {topic: Decimal(len(steps)) for topic, steps in sorted(seen.items())}
