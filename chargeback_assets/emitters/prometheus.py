"""Prometheus output: an OpenMetrics file per tenant holding every emitted period, ready for TSDB backfill.

File `<output_dir>/<tenant_id>.om`, all metrics gauges with bare names, one sample per series per period,
timestamp = 00:00 UTC of the period in seconds (the 1st of the month for monthly aggregation), ending with
`# EOF`, as `promtool tsdb create-blocks-from openmetrics` requires. Metrics:

- `chargeback_amount{tenant_id, ecosystem, identity_id, resource_id, product_type, cost_type,
  allocation_method, env_id, currency, settled}`: the period's chargeback, summed per label set (product
  categories and allocation details of one label set add up).
- `chargeback_team_amount{tenant_id, ecosystem, team, cost_type, currency, settled}`: per `team` tag
  (`UNTAGGED` for rows without one), only for periods where some row carries a `team` tag.
- `chargeback_identity_info{tenant_id, ecosystem, identity_id, identity_name, identity_type}` = 1.
- `chargeback_tags_info{tenant_id, ecosystem, identity_id, resource_id, tag_<key>...}` = 1 for each charged
  (identity, resource) pair with tags; `.` and `-` in tag keys become `_`. Join it in PromQL:
  `chargeback_amount * on(tenant_id, identity_id, resource_id) group_left(tag_team) chargeback_tags_info`.
- `chargeback_topic_amount{tenant_id, ecosystem, resource_id, topic, product_type, currency, settled}`: a
  Kafka cluster's cost of the day per topic (the topic-attribution overlay), kept under
  `<tenant_id>.om.topics.d/<date>/` by `emit_topics`, since the chargeback's own emission replaces its
  period fragments whole. Not pushed.

Every cost series (the three `*_amount` metrics) carries `currency` (the ISO code the period is billed in)
and `settled` (`true` once the day is past the tenant's `settle_days`, `false` while provisional): see
`cost_labels`.

The samples come from custom collectors (`ChargebackCollector`, `TopicCollector`) and are rendered by
`prometheus_client`, which writes label names sorted and values as float64 text (Prometheus stores float64;
the CSV is the exact record). Each period is rendered once, when it is emitted, into a fragment under
`<output_dir>/<tenant_id>.om.d/<date>/` (one file of sample lines per metric), so re-emitting a period
replaces its samples and `publish` rebuilds the file from all fragments under one header per metric (every
emitted date stays exposed) without rendering the history again. With `pushgateway_url`, `publish` also
pushes the newest period's samples (read back from its fragment, timestamps dropped: the Pushgateway
refuses them) to the group `job=<job>, tenant_id=<tenant_id>`, or deletes that group once every period was
withdrawn.

Label values come from outside (display names, tags) and may hold anything. `prometheus_client` escapes only
`\\`, `"` and line feed, so every other control character (carriage return, tab, NUL, escape, C1...) is
replaced by U+FFFD first: no reader can then take it for the end of a line or a field, and the name stays
recognizable. Fragments are written and read as bytes, never through Python's universal newlines (which
would turn a raw carriage return into a line break).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from importlib.metadata import version
from operator import itemgetter
from pathlib import Path
from typing import IO, TypeVar

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from chargeback_assets.emitters import pushgateway
from chargeback_assets.emitters.base import (
    EmitRow,
    EmitterError,
    Labels,
    Memo,
    PeriodFacts,
    flag_text,
    inside,
    team_totals,
    write_atomically,
)
from chargeback_assets.emitters.topics import TopicCharge
from chargeback_assets.engine.models import day_start
from chargeback_assets.engine.money import ZERO
from chargeback_assets.validation import Text, Url, settings

AMOUNT = "chargeback_amount"
TEAM_AMOUNT = "chargeback_team_amount"
IDENTITY_INFO = "chargeback_identity_info"
TAGS_INFO = "chargeback_tags_info"
TOPIC_AMOUNT = "chargeback_topic_amount"
METRICS = {
    AMOUNT: "Chargeback amount of the period per identity, resource, product type, cost type and method.",
    TEAM_AMOUNT: "Chargeback amount of the period per team tag and cost type.",
    IDENTITY_INFO: "Display name and type of each charged identity (value 1).",
    TAGS_INFO: "Custom tags of each charged identity and resource pair (value 1).",
    TOPIC_AMOUNT: "Kafka cluster cost of the period per topic and product type (topic attribution).",
}
AMOUNT_LABELS = (
    "tenant_id",
    "ecosystem",
    "identity_id",
    "resource_id",
    "product_type",
    "cost_type",
    "allocation_method",
    "env_id",
)
TEAM_LABELS = ("tenant_id", "ecosystem", "team", "cost_type")
IDENTITY_LABELS = ("tenant_id", "ecosystem", "identity_id", "identity_name", "identity_type")
TOPIC_LABELS = ("tenant_id", "ecosystem", "resource_id", "topic", "product_type")
COST_LABELS = ("currency", "settled")
"""Added after its own to every cost series: see `cost_labels`."""
DEFAULT_JOB = "chargeback"
_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def tag_label(key: str) -> str:
    return "tag_" + _LABEL_UNSAFE.sub("_", key)


_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
"""Control characters (Unicode Cc) other than line feed, which has an escape."""
REPLACEMENT = "\ufffd"


def label_value(value: str) -> str:
    """`value` with every control character but line feed replaced, ready for `prometheus_client`'s escaping
    of `\\`, `"` and line feed."""
    return _CONTROLS.sub(REPLACEMENT, value)


def cost_labels(facts: PeriodFacts) -> list[str]:
    """The values of `COST_LABELS` for a period: its currency and whether it is settled."""
    return [label_value(facts.currency), flag_text(facts.settled)]


def fragments_of(openmetrics_file: Path) -> Path:
    """The directory of per-period fragments an OpenMetrics file is rebuilt from (its working state)."""
    return openmetrics_file.with_name(openmetrics_file.name + ".d")


_first = itemgetter(0)  # sorts dict items by their (unique) key alone


@settings(kw_only=True)
class PrometheusParams:
    """`params` of a prometheus emitter."""

    output_dir: Text
    pushgateway_url: Url | None = None
    job: Text = DEFAULT_JOB

    def build(self) -> PrometheusEmitter:
        return PrometheusEmitter(Path(self.output_dir), self.pushgateway_url, self.job)


def label_clashes(keys: Iterable[str]) -> list[list[str]]:
    """Groups of tag keys that would become one Prometheus label (`cost.center` and `cost_center`)."""
    by_label: dict[str, list[str]] = {}
    for key in sorted(set(keys)):
        by_label.setdefault(tag_label(key), []).append(key)
    return [group for group in by_label.values() if len(group) > 1]


class Families:
    """A collector of metric families already built: what `prometheus_client` renders or pushes."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


FINGERPRINT = ".fingerprint"
"""The file in a period's fragment naming the samples it was rendered from (see `fingerprint`)."""
_RENDERER = f"prometheus_client {version('prometheus-client')}".encode()


def fingerprint(collector: ChargebackCollector | TopicCollector) -> bytes:
    """A digest of what the collector's families are made of and of the renderer: equal digests render equal
    fragments. The content is encoded as the rows gave it, unsorted: the same rows in the same order (the
    storage reads them ordered) give the same digest, and a different order only costs a render. JSON, not
    pickle, whose bytes also depend on which equal strings happen to be one object."""
    encoded = json.dumps(collector.content, separators=(",", ":")).encode()
    return hashlib.sha256(_RENDERER + encoded).hexdigest().encode()


def header(metric: str) -> bytes:
    """The `# HELP` and `# TYPE` lines of one of our metrics."""
    return generate_latest(Families([Metric(metric, METRICS[metric], "gauge")])).removesuffix(b"# EOF\n")


def sample_lines(family: Metric) -> bytes:
    """The family's samples as OpenMetrics lines, without its header and the closing `# EOF`."""
    rendered = generate_latest(Families([family]))
    return rendered.split(b"\n", 2)[2].removesuffix(b"# EOF\n")


class PrometheusEmitter:
    wants_lines = False

    def __init__(self, output_dir: Path, pushgateway_url: str | None = None, job: str = DEFAULT_JOB) -> None:
        self.output_dir = output_dir
        self.pushgateway_url = pushgateway_url
        self.job = job
        self._labels = LabelValues()

    def file_for(self, tenant_id: str) -> Path:
        return inside(self.output_dir, f"{tenant_id}.om", "OpenMetrics file")

    def _fragments(self, tenant_id: str) -> Path:
        return fragments_of(self.file_for(tenant_id))

    def _topic_fragments(self, tenant_id: str) -> Path:
        path = self.file_for(tenant_id)
        return path.with_name(f"{path.name}.topics.d")

    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow], facts: PeriodFacts) -> list[str]:
        """Replace the period's fragment; the file itself changes in `publish`, which names the outputs (the
        fragments are working state, not something a reader opens)."""
        collector = ChargebackCollector(rows, int(day_start(period).timestamp()), facts, self._labels)
        return self._replace_fragment(self._fragments(tenant_id) / period.isoformat(), collector)

    def emit_topics(
        self, tenant_id: str, ecosystem: str, period: date, rows: Sequence[TopicCharge], facts: PeriodFacts
    ) -> list[str]:
        """Replace the period's topic samples; like `emit`, visible at the next `publish`."""
        timestamp = int(day_start(period).timestamp())
        collector = TopicCollector(tenant_id, ecosystem, rows, timestamp, facts, self._labels)
        target = self._topic_fragments(tenant_id) / period.isoformat()
        return self._replace_fragment(target, collector)

    def retract_topics(self, tenant_id: str, period: date) -> list[str]:
        return self._drop_fragment(tenant_id, self._topic_fragments(tenant_id) / period.isoformat(), "topic")

    def _replace_fragment(self, target: Path, collector: ChargebackCollector | TopicCollector) -> list[str]:
        """Swap the period's fragment for the collector's samples, unless it already holds exactly those:
        rendering is what costs, and most emissions of a day repeat an unchanged day (a re-materialized
        partition, the lookback window). Rendering comes first, so a bad tag key fails before anything is
        written."""
        digest = fingerprint(collector)
        period = target.name
        fingerprint_file = target / FINGERPRINT
        try:
            if fingerprint_file.is_file() and fingerprint_file.read_bytes() == digest:
                return []
        except OSError as exc:
            raise EmitterError(f"cannot read the samples of {period} under {target.parent}: {exc}") from exc
        rendered = {family.name: sample_lines(family) for family in collector.collect()}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{period}.", dir=target.parent))
            for metric, lines in rendered.items():
                (staging / metric).write_bytes(lines)
            (staging / FINGERPRINT).write_bytes(digest)
            if target.exists():
                retired = target.with_name(f".{target.name}.old")
                shutil.rmtree(retired, ignore_errors=True)
                target.rename(retired)
                staging.rename(target)
                shutil.rmtree(retired)
            else:
                staging.rename(target)
        except OSError as exc:
            raise EmitterError(f"cannot write samples for {period} under {target.parent}: {exc}") from exc
        return []

    def retract(self, tenant_id: str, period: date) -> list[str]:
        """Drop the period's fragment; the file loses its samples at the next `publish`."""
        return self._drop_fragment(tenant_id, self._fragments(tenant_id) / period.isoformat(), "")

    def _drop_fragment(self, tenant_id: str, fragment: Path, kind: str) -> list[str]:
        if not fragment.exists():
            return []
        try:
            shutil.rmtree(fragment)
        except OSError as exc:
            raise EmitterError(
                f"cannot remove the samples of {fragment.name} in {fragment.parent}: {exc}"
            ) from exc
        return [f"{self.file_for(tenant_id)} ({fragment.name} {kind + ' ' if kind else ''}samples)"]

    def publish(self, tenant_id: str) -> list[str]:
        """Rebuild `<tenant_id>.om` from every period's fragment; push the newest period if configured (or
        delete the tenant's group when no period is left)."""
        path = self.file_for(tenant_id)
        periods = self._periods(tenant_id)
        topic_periods = self._periods(tenant_id, self._topic_fragments(tenant_id))

        def write(out: IO[bytes]) -> None:
            for metric in METRICS:
                sources = topic_periods if metric == TOPIC_AMOUNT else periods
                files = [p / metric for p in sources if (p / metric).exists()]
                if not files:
                    continue
                out.write(header(metric))
                for file in files:
                    with file.open("rb") as fragment:
                        shutil.copyfileobj(fragment, out)
            out.write(b"# EOF\n")

        write_atomically(path, write, binary=True)
        published = [str(path)]
        if self.pushgateway_url:
            group = {"tenant_id": tenant_id}
            published.append(
                pushgateway.push(self.pushgateway_url, self.job, group, self._untimed(periods[-1]))
                if periods
                else pushgateway.delete(self.pushgateway_url, self.job, group)
            )
        return published

    def _periods(self, tenant_id: str, root: Path | None = None) -> list[Path]:
        root = root or self._fragments(tenant_id)
        try:
            return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise EmitterError(f"cannot read the emitted periods under {root}: {exc}") from exc

    def _untimed(self, period_dir: Path) -> Families:
        """The period's samples read back from its fragment, without timestamps (the Pushgateway refuses
        them)."""
        text = b"".join(
            header(metric) + (period_dir / metric).read_bytes()
            for metric in METRICS
            if (period_dir / metric).exists()
        )
        families = []
        for parsed in text_string_to_metric_families(text.decode("utf-8") + "# EOF\n"):
            family = Metric(parsed.name, parsed.documentation, parsed.type)
            family.samples = [sample._replace(timestamp=None) for sample in parsed.samples]
            families.append(family)
        return Families(families)


class LabelValues:
    """Label values made safe once per distinct text (see `label_value`), and tag labels once per tag set,
    for every period an emitter writes: a large period repeats a few hundred values over tens of thousands
    of series."""

    def __init__(self) -> None:
        self.safe: Memo[str, str] = Memo(label_value)
        self.tags: Memo[Tags, dict[str, str]] = Memo(self._tag_labels)

    def _tag_labels(self, tags: Tags) -> dict[str, str]:
        return {name: self.safe[value] for name, value in _tag_labels(dict(tags))}


Tags = tuple[tuple[str, str], ...]
"""A row's tags as sorted (key, value) pairs."""


class ChargebackCollector:
    """One period's chargeback rows as the gauge families of the OpenMetrics file, every sample stamped
    with the period's start; the samples of each family sorted, so the file is reproducible.

    The rows are summed per series at once: `content` is all the families are made of, so equal contents
    render equal fragments (see `fingerprint`). It is sorted only in `collect`, and holds amounts as decimal
    text (which encodes several times faster than `Decimal`, and converts to the same float): an unchanged
    period is recognized without either.
    """

    def __init__(
        self, rows: Sequence[EmitRow], timestamp: int, facts: PeriodFacts, labels: LabelValues
    ) -> None:
        amounts: dict[tuple[str, ...], Decimal] = {}
        identities: dict[tuple[str, ...], Labels] = {}
        tagged: dict[tuple[str, ...], Labels] = {}
        for r, row_labels in rows:
            key = (
                r.tenant_id,
                r.ecosystem,
                r.identity_id,
                r.resource_id or "",
                r.product_type,
                str(r.cost_type),
                r.allocation_method or "",
                r.env_id,
            )
            amounts[key] = amounts.get(key, ZERO) + r.amount
            identities[key[:3]] = row_labels
            if row_labels.tags:
                tagged[key[:4]] = row_labels
        teams = team_totals(rows)
        self.content = (
            timestamp,
            tuple(cost_labels(facts)),
            _texts(amounts),
            (rows[0][0].tenant_id, rows[0][0].ecosystem, _texts(teams)) if teams is not None else None,
            [(key, i.identity_name, i.identity_type) for key, i in identities.items()],
            [(key, tuple(sorted(t.tags.items()))) for key, t in tagged.items()],
        )
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        timestamp, cost, amounts, teams, identities, tagged = self.content
        safe = self._labels.safe
        family = GaugeMetricFamily(AMOUNT, METRICS[AMOUNT], labels=AMOUNT_LABELS + COST_LABELS)
        for key, amount in sorted(amounts, key=_first):
            family.add_metric([*(safe[value] for value in key), *cost], float(amount), timestamp)
        yield family
        if teams is not None:
            tenant, ecosystem, totals = teams
            family = GaugeMetricFamily(TEAM_AMOUNT, METRICS[TEAM_AMOUNT], labels=TEAM_LABELS + COST_LABELS)
            for (team, cost_type), amount in totals:
                values = [safe[tenant], safe[ecosystem], safe[team], cost_type, *cost]
                family.add_metric(values, float(amount), timestamp)
            yield family
        family = GaugeMetricFamily(IDENTITY_INFO, METRICS[IDENTITY_INFO], labels=IDENTITY_LABELS)
        for key, name, identity_type in sorted(identities, key=_first):
            family.add_metric([safe[value] for value in (*key, name, identity_type)], 1, timestamp)
        yield family
        if tagged:
            family = Metric(TAGS_INFO, METRICS[TAGS_INFO], "gauge")
            tag_labels = self._labels.tags
            for key, tags in sorted(tagged, key=_first):
                scope = dict(zip(AMOUNT_LABELS, (safe[value] for value in key), strict=False))
                family.add_sample(TAGS_INFO, {**scope, **tag_labels[tags]}, 1, timestamp)
            yield family


class TopicCollector:
    """One day's topic rows of a tenant as the `chargeback_topic_amount` family, summed per series."""

    def __init__(
        self,
        tenant_id: str,
        ecosystem: str,
        rows: Sequence[TopicCharge],
        timestamp: int,
        facts: PeriodFacts,
        labels: LabelValues,
    ) -> None:
        amounts: dict[tuple[str, str, str], Decimal] = {}
        for r in rows:
            key = (r.resource_id, r.topic, r.product_type)
            amounts[key] = amounts.get(key, ZERO) + r.amount
        self.content = (timestamp, (tenant_id, ecosystem), tuple(cost_labels(facts)), sorted(_texts(amounts)))
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        timestamp, scope, cost, amounts = self.content
        if not amounts:
            return
        safe = self._labels.safe
        family = GaugeMetricFamily(TOPIC_AMOUNT, METRICS[TOPIC_AMOUNT], labels=TOPIC_LABELS + COST_LABELS)
        for key, amount in amounts:
            values = [*(safe[value] for value in (*scope, *key)), *cost]
            family.add_metric(values, float(amount), timestamp)
        yield family


K = TypeVar("K")


def _texts(amounts: Mapping[K, Decimal]) -> list[tuple[K, str]]:
    return [(key, str(amount)) for key, amount in amounts.items()]


def _tag_labels(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    clashes = label_clashes(tags)
    if clashes:
        raise EmitterError(
            f"tag keys {clashes[0]} would share the Prometheus label {tag_label(clashes[0][0])}"
        )
    return sorted((tag_label(key), value) for key, value in tags.items())
