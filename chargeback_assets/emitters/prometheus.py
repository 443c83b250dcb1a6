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
  Kafka cluster's
  cost of the day per topic (the topic-attribution overlay), kept under `<tenant_id>.om.topics.d/<date>/`
  by `emit_topics`, since the chargeback's own emission replaces its period fragments whole. Not pushed.

Every cost series (the three `*_amount` metrics) carries `currency` (the ISO code the period is billed in)
and `settled` (`true` once the day is past the tenant's `settle_days`, `false` while provisional): see
`cost_labels`.

Each period is kept as a fragment under `<output_dir>/<tenant_id>.om.d/<date>/`, so re-emitting a period
replaces its samples and `publish` rebuilds the file from all fragments (every emitted date stays exposed).
With `pushgateway_url`, `publish` also pushes the newest period's samples (without timestamps) to the group
`job=<job>, tenant_id=<tenant_id>`, or deletes that group once every period was withdrawn. Values are
exact decimal text; Prometheus stores them as float64.

Label values come from outside (display names, tags) and may hold anything. Both formats escape only `\\`,
`"` and line feed (`\\n`), so every other control character (carriage return, tab, NUL, escape, C1...) is
replaced by U+FFFD: no reader can then take it for the end of a line or a field, and the name stays
recognizable. Fragments are written and read as bytes, never through Python's universal newlines
(which would turn a raw carriage return into a line break). `prometheus_client` is not used to render: its
escaping is the same three characters (it leaves a carriage return raw), and it builds one exposition per
registry, where this file is rebuilt from per-period fragments carrying their own timestamps.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import IO

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
DEFAULT_JOB = "chargeback"
_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def tag_label(key: str) -> str:
    return "tag_" + _LABEL_UNSAFE.sub("_", key)


_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
"""Control characters (Unicode Cc) other than line feed, which has an escape."""
REPLACEMENT = "\ufffd"


def label_value(value: str) -> str:
    """`value` as a quoted label value's content in OpenMetrics and the Prometheus text format."""
    return _CONTROLS.sub(REPLACEMENT, value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def cost_labels(facts: PeriodFacts) -> str:
    """The labels every cost series of a period carries after its own: its currency and whether it is
    settled."""
    return f',currency="{label_value(facts.currency)}",settled="{flag_text(facts.settled)}"'


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


class PrometheusEmitter:
    wants_lines = False

    def __init__(self, output_dir: Path, pushgateway_url: str | None = None, job: str = DEFAULT_JOB) -> None:
        self.output_dir = output_dir
        self.pushgateway_url = pushgateway_url
        self.job = job
        self._samples = SampleRenderer()

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
        by_metric = dict(self._samples.period_samples(rows, int(day_start(period).timestamp()), facts))
        return self._replace_fragment(self._fragments(tenant_id) / period.isoformat(), by_metric)

    def emit_topics(
        self, tenant_id: str, ecosystem: str, period: date, rows: Sequence[TopicCharge], facts: PeriodFacts
    ) -> list[str]:
        """Replace the period's topic samples; like `emit`, visible at the next `publish`."""
        timestamp = int(day_start(period).timestamp())
        amounts: dict[tuple[str, str, str], Decimal] = {}
        for r in rows:
            key = (r.resource_id, r.topic, r.product_type)
            amounts[key] = amounts.get(key, ZERO) + r.amount
        e, cost = self._samples.escaped, cost_labels(facts)
        lines = [
            f'{TOPIC_AMOUNT}{{tenant_id="{e[tenant_id]}",ecosystem="{e[ecosystem]}",resource_id="{e[resource]}",'
            f'topic="{e[topic]}",product_type="{e[product]}"{cost}}} {amount:f} {timestamp}\n'
            for (resource, topic, product), amount in sorted(amounts.items())
        ]
        target = self._topic_fragments(tenant_id) / period.isoformat()
        return self._replace_fragment(target, {TOPIC_AMOUNT: lines} if lines else {})

    def retract_topics(self, tenant_id: str, period: date) -> list[str]:
        return self._drop_fragment(tenant_id, self._topic_fragments(tenant_id) / period.isoformat(), "topic")

    def _replace_fragment(self, target: Path, by_metric: Mapping[str, list[str]]) -> list[str]:
        period = target.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{period}.", dir=target.parent))
            for metric, lines in by_metric.items():
                (staging / metric).write_bytes("".join(lines).encode("utf-8"))
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
            for metric, help_text in METRICS.items():
                sources = topic_periods if metric == TOPIC_AMOUNT else periods
                files = [p / metric for p in sources if (p / metric).exists()]
                if not files:
                    continue
                out.write(f"# HELP {metric} {help_text}\n# TYPE {metric} gauge\n".encode())
                for file in files:
                    with file.open("rb") as fragment:
                        shutil.copyfileobj(fragment, out)
            out.write(b"# EOF\n")

        write_atomically(path, write, binary=True)
        published = [str(path)]
        if self.pushgateway_url:
            group = {"tenant_id": tenant_id}
            published.append(
                pushgateway.push(self.pushgateway_url, self.job, group, self._push_text(periods[-1]))
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

    def _push_text(self, period_dir: Path) -> bytes:
        """The period's samples as Prometheus text without timestamps (the Pushgateway refuses them)."""
        lines = []
        for metric in METRICS:
            file = period_dir / metric
            if file.exists():
                lines.append(f"# TYPE {metric} gauge".encode())
                samples = file.read_bytes().split(b"\n")  # not splitlines(): a line ends at \n only
                lines += [line.rsplit(b" ", 1)[0] for line in samples if line]
        return b"\n".join(lines) + b"\n"


class SampleRenderer:
    """A period's rows as sample lines; label values are escaped once per distinct text, and the tag
    labels once per `Labels`, for every period an emitter writes.

    Each line is one format string: a large period has tens of thousands of `chargeback_amount` series.
    """

    def __init__(self) -> None:
        self.escaped: Memo[str, str] = Memo(label_value)
        self._tag_labels: Memo[Labels, str] = Memo(self._render_tags)

    def _render_tags(self, labels: Labels) -> str:
        return "".join(f',{name}="{self.escaped[value]}"' for name, value in _tag_labels(labels.tags))

    def period_samples(
        self, rows: Sequence[EmitRow], timestamp: int, facts: PeriodFacts
    ) -> Iterator[tuple[str, list[str]]]:
        """(metric, its sample lines) for one period, every list sorted so the file is reproducible."""
        amounts: dict[tuple[str, ...], Decimal] = {}
        identities: dict[tuple[str, ...], Labels] = {}
        tagged: dict[tuple[str, ...], Labels] = {}
        for r, labels in rows:
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
            identities[key[:3]] = labels
            if labels.tags:
                tagged[key[:4]] = labels
        e, cost = self.escaped, cost_labels(facts)
        yield (
            AMOUNT,
            [
                f'{AMOUNT}{{tenant_id="{e[tenant]}",ecosystem="{e[ecosystem]}",identity_id="{e[identity]}",'
                f'resource_id="{e[resource]}",product_type="{e[product]}",cost_type="{e[cost_type]}",'
                f'allocation_method="{e[method]}",env_id="{e[env]}"{cost}}} {amount:f} {timestamp}\n'
                for (tenant, ecosystem, identity, resource, product, cost_type, method, env), amount in (
                    sorted(amounts.items(), key=_first)
                )
            ],
        )
        teams = team_totals(rows)
        if teams is not None:
            tenant, ecosystem = e[rows[0][0].tenant_id], e[rows[0][0].ecosystem]
            yield (
                TEAM_AMOUNT,
                [
                    f'{TEAM_AMOUNT}{{tenant_id="{tenant}",ecosystem="{ecosystem}",team="{e[team]}",'
                    f'cost_type="{e[cost_type]}"{cost}}} {amount:f} {timestamp}\n'
                    for (team, cost_type), amount in teams.items()
                ],
            )
        yield (
            IDENTITY_INFO,
            [
                f'{IDENTITY_INFO}{{tenant_id="{e[tenant]}",ecosystem="{e[ecosystem]}",identity_id="{e[identity]}",'
                f'identity_name="{e[labels.identity_name]}",identity_type="{e[labels.identity_type]}"}} 1 '
                f"{timestamp}\n"
                for (tenant, ecosystem, identity), labels in sorted(identities.items(), key=_first)
            ],
        )
        if tagged:
            tag_labels = self._tag_labels
            yield (
                TAGS_INFO,
                [
                    f'{TAGS_INFO}{{tenant_id="{e[tenant]}",ecosystem="{e[ecosystem]}",identity_id="{e[identity]}",'
                    f'resource_id="{e[resource]}"{tag_labels[labels]}}} 1 {timestamp}\n'
                    for (tenant, ecosystem, identity, resource), labels in sorted(tagged.items(), key=_first)
                ],
            )


def _tag_labels(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    clashes = label_clashes(tags)
    if clashes:
        raise EmitterError(
            f"tag keys {clashes[0]} would share the Prometheus label {tag_label(clashes[0][0])}"
        )
    return sorted((tag_label(key), value) for key, value in tags.items())
