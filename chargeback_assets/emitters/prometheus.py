"""Prometheus output: an OpenMetrics file per tenant holding every emitted period, ready for TSDB backfill.

File `<output_dir>/<tenant_id>.om`, all metrics gauges with bare names, one sample per series per period,
timestamp = 00:00 UTC of the period in seconds (the 1st of the month for monthly aggregation), ending with
`# EOF`, as `promtool tsdb create-blocks-from openmetrics` requires. Metrics:

- `chargeback_amount{tenant_id, ecosystem, identity_id, resource_id, product_type, cost_type,
  allocation_method, env_id}`: the period's chargeback, summed per label set (product categories and
  allocation details of one label set add up).
- `chargeback_team_amount{tenant_id, ecosystem, team, cost_type}`: per `team` tag (`UNTAGGED` for rows
  without one), only for periods where some row carries a `team` tag.
- `chargeback_identity_info{tenant_id, ecosystem, identity_id, identity_name, identity_type}` = 1.
- `chargeback_tags_info{tenant_id, ecosystem, identity_id, resource_id, tag_<key>...}` = 1 for each charged
  (identity, resource) pair with tags; `.` and `-` in tag keys become `_`. Join it in PromQL:
  `chargeback_amount * on(tenant_id, identity_id, resource_id) group_left(tag_team) chargeback_tags_info`.

Each period is kept as a fragment under `<output_dir>/<tenant_id>.om.d/<date>/`, so re-emitting a period
replaces its samples and `publish` rebuilds the file from all fragments (every emitted date stays exposed).
With `pushgateway_url`, `publish` also pushes the newest period's samples (without timestamps) to the group
`job=<job>, tenant_id=<tenant_id>`. Values are exact decimal text; Prometheus stores them as float64.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO

from chargeback_assets.emitters import pushgateway
from chargeback_assets.emitters.base import (
    EmitRow,
    EmitterError,
    inside,
    money_text,
    team_totals,
    write_atomically,
)
from chargeback_assets.engine.models import day_start
from chargeback_assets.engine.money import ZERO

AMOUNT = "chargeback_amount"
TEAM_AMOUNT = "chargeback_team_amount"
IDENTITY_INFO = "chargeback_identity_info"
TAGS_INFO = "chargeback_tags_info"
METRICS = {
    AMOUNT: "Chargeback amount of the period per identity, resource, product type, cost type and method.",
    TEAM_AMOUNT: "Chargeback amount of the period per team tag and cost type.",
    IDENTITY_INFO: "Display name and type of each charged identity (value 1).",
    TAGS_INFO: "Custom tags of each charged identity and resource pair (value 1).",
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
DEFAULT_JOB = "chargeback"
_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def tag_label(key: str) -> str:
    return "tag_" + _LABEL_UNSAFE.sub("_", key)


def _escape(value: str) -> str:
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value  # the common case, and the hot path of a large day
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(metric: str, labels: Iterable[tuple[str, str]]) -> str:
    return metric + "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


class PrometheusEmitter:
    def __init__(self, output_dir: Path, pushgateway_url: str | None = None, job: str = DEFAULT_JOB) -> None:
        self.output_dir = output_dir
        self.pushgateway_url = pushgateway_url
        self.job = job

    def file_for(self, tenant_id: str) -> Path:
        return inside(self.output_dir, f"{tenant_id}.om", "OpenMetrics file")

    def _fragments(self, tenant_id: str) -> Path:
        return self.file_for(tenant_id).with_name(f"{tenant_id}.om.d")

    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow]) -> list[str]:
        """Replace the period's fragment; the file itself changes in `publish`."""
        timestamp = int(day_start(period).timestamp())
        by_metric = {metric: list(lines) for metric, lines in period_samples(rows)}
        target = self._fragments(tenant_id) / period.isoformat()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{period.isoformat()}.", dir=target.parent))
            for metric, lines in by_metric.items():
                with (staging / metric).open("w", encoding="utf-8") as out:
                    out.writelines(f"{series} {value} {timestamp}\n" for series, value in lines)
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
        return [str(target)]

    def publish(self, tenant_id: str) -> list[str]:
        """Rebuild `<tenant_id>.om` from every period's fragment; push the newest period if configured."""
        path = self.file_for(tenant_id)
        periods = self._periods(tenant_id)

        def write(out: IO[str]) -> None:
            for metric, help_text in METRICS.items():
                files = [p / metric for p in periods if (p / metric).exists()]
                if not files:
                    continue
                out.write(f"# HELP {metric} {help_text}\n# TYPE {metric} gauge\n")
                for file in files:
                    with file.open(encoding="utf-8") as fragment:
                        shutil.copyfileobj(fragment, out)
            out.write("# EOF\n")

        write_atomically(path, write)
        published = [str(path)]
        if self.pushgateway_url and periods:
            text = self._push_text(periods[-1])
            published.append(pushgateway.push(self.pushgateway_url, self.job, {"tenant_id": tenant_id}, text))
        return published

    def _periods(self, tenant_id: str) -> list[Path]:
        root = self._fragments(tenant_id)
        try:
            return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise EmitterError(f"cannot read the emitted periods under {root}: {exc}") from exc

    def _push_text(self, period_dir: Path) -> str:
        """The period's samples as Prometheus text without timestamps (the Pushgateway refuses them)."""
        lines = []
        for metric in METRICS:
            file = period_dir / metric
            if file.exists():
                lines.append(f"# TYPE {metric} gauge")
                with file.open(encoding="utf-8") as fragment:
                    lines += [line.rstrip("\n").rsplit(" ", 1)[0] for line in fragment]
        return "\n".join(lines) + "\n"


IDENTITY_LABELS = ("tenant_id", "ecosystem", "identity_id", "identity_name", "identity_type")
TEAM_LABELS = ("tenant_id", "ecosystem", "team", "cost_type")
PAIR_LABELS = ("tenant_id", "ecosystem", "identity_id", "resource_id")


def period_samples(rows: Sequence[EmitRow]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(metric, [(series, value text)]) for one period, every list sorted so the file is reproducible."""
    amounts: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    identities: dict[tuple[str, ...], tuple[str, ...]] = {}
    tagged: dict[tuple[str, ...], Mapping[str, str]] = {}
    for item in rows:
        r = item.row
        resource_id = r.resource_id or ""
        cost_type, method = str(r.cost_type), r.allocation_method or ""
        key = (
            r.tenant_id,
            r.ecosystem,
            r.identity_id,
            resource_id,
            r.product_type,
            cost_type,
            method,
            r.env_id,
        )
        amounts[key] += r.amount
        identities[key[:3]] = (*key[:3], item.identity_name, item.identity_type)
        if item.tags:
            tagged[key[:4]] = item.tags
    yield AMOUNT, [_sample(AMOUNT, AMOUNT_LABELS, key, money_text(v)) for key, v in sorted(amounts.items())]
    teams = team_totals(rows)
    if teams is not None:
        scope = (rows[0].row.tenant_id, rows[0].row.ecosystem)
        yield (
            TEAM_AMOUNT,
            [
                _sample(TEAM_AMOUNT, TEAM_LABELS, (*scope, team, cost), money_text(amount))
                for (team, cost), amount in teams.items()
            ],
        )
    yield (
        IDENTITY_INFO,
        [_sample(IDENTITY_INFO, IDENTITY_LABELS, v, "1") for _, v in sorted(identities.items())],
    )
    if tagged:
        yield (
            TAGS_INFO,
            [
                (_series(TAGS_INFO, [*zip(PAIR_LABELS, key, strict=True), *_tag_labels(tags)]), "1")
                for key, tags in sorted(tagged.items())
            ],
        )


def _sample(metric: str, names: Sequence[str], values: Sequence[str], value: str) -> tuple[str, str]:
    return _series(metric, zip(names, values, strict=True)), value


def _tag_labels(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    labels: dict[str, str] = {}
    for key in sorted(tags):
        name = tag_label(key)
        if name in labels:
            clash = sorted(k for k in tags if tag_label(k) == name)
            raise EmitterError(f"tag keys {clash} would share the Prometheus label {name}")
        labels[name] = tags[key]
    return sorted(labels.items())
