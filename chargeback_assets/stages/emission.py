"""Emission: publish a tenant's stored chargeback for some days through each configured emitter of a type.

Every requested day is emitted again (a re-materialized partition replaces its output), except days older
than the emitter's `lookback_days` and days without chargeback rows, which are recorded as skipped. Monthly
aggregation emits each touched month once, from all of its stored days, and records the outcome on every
requested day of that month. Each (tenant, emitter, date) gets an `emission_records` row with its status and
attempt count; when any emission failed, the failures are recorded first and then raised, so the partition
fails and its next materialization retries (and counts another attempt).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from chargeback_assets.config import EmitterConfig, TenantConfig
from chargeback_assets.emitters.base import EmitRow, EmitterError
from chargeback_assets.emitters.registry import build_emitter
from chargeback_assets.engine.models import ChargebackRow, Window, day_start
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.scope import StageError, TenantData
from chargeback_assets.stages.tags import sync_config_tags
from chargeback_assets.storage.chargeback import chargeback_dates, chargeback_rows_for_day
from chargeback_assets.storage.emissions import EmissionRecord, EmissionStatus, record_emission
from chargeback_assets.storage.inventory import all_resources, identities_overlapping
from chargeback_assets.storage.tags import tags_for

PIPELINE = "chargeback"
NO_ROWS = "no chargeback rows"


@dataclass(slots=True)
class EmitterRun:
    """One emitter's outcome over the requested days of a tenant."""

    emitter: str
    emitted: list[date] = field(default_factory=list)
    skipped: dict[date, str] = field(default_factory=dict)
    failed: dict[date, str] = field(default_factory=dict)
    rows: int = 0
    outputs: list[str] = field(default_factory=list)
    records: list[EmissionRecord] = field(default_factory=list)


class EmissionFailed(StageError):
    """Some emissions failed (already recorded); `runs` still describes everything that was done."""

    def __init__(self, message: str, runs: list[EmitterRun]) -> None:
        super().__init__(message)
        self.runs = runs


def emitters_of_type(tenant: TenantConfig, emitter_type: str) -> list[tuple[int, EmitterConfig]]:
    """The tenant's emitters of one type with their index in the config list (for error key paths)."""
    return [(index, e) for index, e in enumerate(tenant.emitters) if e.type == emitter_type]


def emit_days(
    data: TenantData, emitter_type: str, days: Sequence[date], *, now: datetime
) -> list[EmitterRun]:
    """Emit `days` through every emitter of `emitter_type` the tenant configures; [] when it has none."""
    configured = emitters_of_type(data.tenant, emitter_type)
    if not configured or not days:
        return []
    sync_config_tags(data, now)
    labels = RowLabels(data, _span(days, monthly=any(e.aggregation == "monthly" for _, e in configured)))
    runs = [_emit(data, index, emitter, sorted(set(days)), labels, now) for index, emitter in configured]
    failures = [
        str(data.fail(f"emitter {run.emitter}", [day], cause))
        for run in runs
        for day, cause in sorted(run.failed.items())
    ]
    if failures:
        raise EmissionFailed("\n".join(failures), runs)
    return runs


def _emit(
    data: TenantData, index: int, config: EmitterConfig, days: list[date], labels: RowLabels, now: datetime
) -> EmitterRun:
    emitter = build_emitter(config, f"tenants.{data.tenant.name}.emitters[{index}]")
    run = EmitterRun(config.name)
    if config.lookback_days is not None:
        oldest = now.date() - timedelta(days=config.lookback_days)
        run.skipped.update(
            {d: f"older than lookback_days ({config.lookback_days})" for d in days if d < oldest}
        )
    periods: dict[date, list[date]] = defaultdict(list)
    for day in days:
        if day not in run.skipped:
            periods[day.replace(day=1) if config.aggregation == "monthly" else day].append(day)
    for period, period_days in sorted(periods.items()):
        rows = labels.label(period_rows(data, period, monthly=config.aggregation == "monthly"))
        if not rows:
            run.skipped.update(dict.fromkeys(period_days, NO_ROWS))
            continue
        try:
            run.outputs += emitter.emit(data.tenant_id, period, rows)
        except EmitterError as exc:
            run.failed.update(dict.fromkeys(period_days, str(exc)))
            continue
        run.emitted += period_days
        run.rows += len(rows)
    if run.emitted:
        try:
            run.outputs += emitter.publish(data.tenant_id)
        except EmitterError as exc:
            run.failed.update(dict.fromkeys(run.emitted, f"publish: {exc}"))
            run.emitted = []
    _record(data, run, now)
    return run


def _record(data: TenantData, run: EmitterRun, now: datetime) -> None:
    outcomes: dict[date, tuple[EmissionStatus, str | None]] = {
        **{day: ("skipped", reason) for day, reason in run.skipped.items()},
        **{day: ("failed", cause) for day, cause in run.failed.items()},
        **{day: ("emitted", None) for day in run.emitted},
    }
    with data.db.transaction() as tx:
        run.records = [
            record_emission(tx, data.ecosystem, data.tenant_id, run.emitter, PIPELINE, day, status, now, note)
            for day, (status, note) in sorted(outcomes.items())
        ]


def period_rows(data: TenantData, period: date, *, monthly: bool) -> list[ChargebackRow]:
    """A day's stored rows, or for a month every stored day summed per dimension and dated the 1st."""
    if not monthly:
        return chargeback_rows_for_day(data.db, data.ecosystem, data.tenant_id, period)
    month = [
        d for d in chargeback_dates(data.db, data.ecosystem, data.tenant_id) if d.replace(day=1) == period
    ]
    first: dict[tuple[object, ...], ChargebackRow] = {}
    totals: dict[tuple[object, ...], Decimal] = defaultdict(lambda: ZERO)
    for day in month:
        for row in chargeback_rows_for_day(data.db, data.ecosystem, data.tenant_id, day):
            first.setdefault(row.dimension, row)
            totals[row.dimension] += row.amount
    start = day_start(period)
    return [replace(row, timestamp=start, amount=totals[key], metadata={}) for key, row in first.items()]


def _span(days: Sequence[date], *, monthly: bool) -> Window:
    first, last = min(days), max(days) + timedelta(days=1)
    if monthly:
        first = first.replace(day=1)
        last = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
    return Window(day_start(first), day_start(last))


class RowLabels:
    """Display names, identity types and tags for a tenant's rows, read once per emission.

    Tags of a row: its identity's, then its resource's (the resource wins on a shared key). Rows of one
    (identity, resource) pair share one mapping, so emitters can cache what they derive from it.
    """

    def __init__(self, data: TenantData, window: Window) -> None:
        self._resource_names = {
            r.resource_id: r.display_name or ""
            for r in all_resources(data.db, data.ecosystem, data.tenant_id)
        }
        self._identities = {
            i.identity_id: (i.display_name or "", i.identity_type)
            for i in identities_overlapping(data.db, data.ecosystem, data.tenant_id, window)
        }
        self._tags = tags_for(data.db, data.ecosystem, data.tenant_id)
        self._merged: dict[tuple[str, str], Mapping[str, str]] = {}

    def tags(self, identity_id: str, resource_id: str) -> Mapping[str, str]:
        key = (identity_id, resource_id)
        merged = self._merged.get(key)
        if merged is None:
            merged = self._merged[key] = {
                **self._tags.get(("identity", identity_id), {}),
                **self._tags.get(("resource", resource_id), {}),
            }
        return merged

    def label(self, rows: list[ChargebackRow]) -> list[EmitRow]:
        labelled = []
        for row in rows:
            resource_id = row.resource_id or ""
            identity_name, identity_type = self._identities.get(row.identity_id, ("", ""))
            labelled.append(
                EmitRow(
                    row,
                    resource_name=self._resource_names.get(resource_id, ""),
                    identity_name=identity_name,
                    identity_type=identity_type,
                    tags=self.tags(row.identity_id, resource_id),
                )
            )
        return labelled
