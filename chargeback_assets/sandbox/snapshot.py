"""Snapshots: an organization frozen to one JSON file, so a demo or a bug report can be replayed exactly.

Format `chargeback-sandbox-snapshot/1`:
  organization_id   the org uuid
  objects           {list key: [API objects as listed]}; `identity_pools` is {provider id: [pools]}
  connectors        {env id: {lkc id: {connector name: expanded entry (id, info, status)}}}
  costs             [Cost rows as served by /billing/v1/costs]
  metrics           [{name, labels, start (ISO 8601 UTC), step_seconds, values (null = no sample)}]
Series are written one at a time, so dumping a large organization never holds all its samples at once.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from chargeback_assets.sandbox.organization import OBJECT_KINDS, Organization
from chargeback_assets.sandbox.usage import RecordedSeries, RecordedUsage, Series

FORMAT = "chargeback-sandbox-snapshot/1"


def dump_snapshot(org: Organization, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        _write(org, out)


def _write(org: Organization, out: TextIO) -> None:
    objects: dict[str, Any] = {kind: org.objects[kind] for kind in OBJECT_KINDS}
    objects["identity_pools"] = org.identity_pools
    out.write(f'{{"format": {json.dumps(FORMAT)}, "organization_id": {json.dumps(org.organization_id)},\n')
    out.write(f' "objects": {json.dumps(objects)},\n "connectors": {json.dumps(org.connectors)},\n')
    out.write(' "costs": [')
    out.write(",\n  ".join(json.dumps(row) for row in org.costs))
    out.write('],\n "metrics": [')
    first = True
    for series in org.usage.all_series():
        entry = _series_entry(org, series)
        if entry is None:
            continue
        out.write(("" if first else ",") + "\n  " + json.dumps(entry))
        first = False
    out.write("\n ]}\n")


def _series_entry(org: Organization, series: Series) -> dict[str, Any] | None:
    lo, hi = org.usage.extent_ms(series)
    ts, vs = org.usage.samples(series, lo, hi)
    if ts.size == 0:
        return None
    step = int(np.gcd.reduce(np.diff(ts))) if ts.size > 1 else 60_000
    values: list[float | None] = [None] * (int(ts[-1] - ts[0]) // step + 1)
    for t, v in zip(((ts - ts[0]) // step).tolist(), vs.tolist(), strict=True):
        values[t] = v
    return {
        "name": series.name,
        "labels": series.label_dict(),
        "start": _iso_ms(int(ts[0])),
        "step_seconds": step // 1000 if step % 1000 == 0 else step / 1000,
        "values": values,
    }


def load_snapshot(path: str | Path) -> Organization:
    with open(path, encoding="utf-8") as source:
        data = json.load(source)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a sandbox snapshot (expected format {FORMAT!r})")
    missing = {"organization_id", "objects", "connectors", "costs", "metrics"} - set(data)
    if missing:
        raise ValueError(f"{path}: snapshot lacks {sorted(missing)}")
    objects = dict(data["objects"])
    identity_pools = objects.pop("identity_pools", {})
    absent = [kind for kind in OBJECT_KINDS if kind not in objects]
    if absent:
        raise ValueError(f"{path}: objects lacks {absent}")
    recorded: dict[Series, RecordedSeries] = {}
    for index, entry in enumerate(data["metrics"]):
        try:
            series = Series(entry["name"], tuple(sorted(entry["labels"].items())))
            step_ms = round(float(entry["step_seconds"]) * 1000)
            start = datetime.fromisoformat(entry["start"].replace("Z", "+00:00"))
            values = np.array(
                [math.nan if v is None else float(v) for v in entry["values"]], dtype=np.float64
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{path}: metrics[{index}] is malformed: {err}") from None
        if step_ms <= 0 or start.tzinfo is None:
            raise ValueError(f"{path}: metrics[{index}] needs a positive step_seconds and a UTC start")
        recorded[series] = RecordedSeries(round(start.timestamp() * 1000), step_ms, values)
    return Organization(
        organization_id=data["organization_id"],
        objects=objects,
        identity_pools=identity_pools,
        connectors=data["connectors"],
        costs=data["costs"],
        usage=RecordedUsage(recorded),
    )


def _iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")
