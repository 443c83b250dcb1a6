"""Publishing the topic attribution: a CSV per day beside each csv emitter's files, and the topic series in
each prometheus emitter's OpenMetrics file.

Blocking per partition, like the chargeback's emission: a day whose topic rows do not reconcile with its
current bill is not published, and what an earlier emission published for it is withdrawn. A tenant without
the overlay has nothing published (and earlier topic outputs of the days it re-emits are withdrawn). Each
(emitter, day) outcome is an `emission_records` row with pipeline `topic_attribution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from chargeback_assets.emitters.base import EmitterError, PeriodFacts
from chargeback_assets.emitters.topics import remove_topic_csv, write_topic_csv
from chargeback_assets.engine.models import is_settled
from chargeback_assets.stages.checks import reconcile_topics_day, topic_overlay_settings
from chargeback_assets.stages.emission import (
    PendingEmission,
    emitters_of_type,
    owed_since,
    period_currency,
)
from chargeback_assets.stages.scope import StageError, TenantData
from chargeback_assets.storage.emissions import (
    EmissionStatus,
    emission_records,
    record_emission,
    record_outputs,
)
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets.storage.topics import topic_rows_for_day

PIPELINE = "topic_attribution"
EMITTER_TYPES = ("csv", "prometheus")
"""The emitter types that publish topic outputs (a topic CSV beside the chargeback's, topic series)."""


@dataclass(slots=True)
class TopicOutputDay:
    day: date
    status: EmissionStatus = "skipped"
    rows: int = 0
    outputs: list[str] = field(default_factory=list)
    note: str | None = None


class TopicOutputsNotPublished(StageError):
    """Some days were blocked or failed; `days` holds every day's outcome, the published ones included."""

    def __init__(self, message: str, days: list[TopicOutputDay]) -> None:
        super().__init__(message)
        self.days = days


def publish_topic_days(data: TenantData, days: Sequence[date], *, now: datetime) -> list[TopicOutputDay]:
    """Publish (or withdraw) each day's topic outputs; raises TopicOutputsNotPublished naming the blocked or
    failed days after every other day was published and recorded."""
    csv_dirs = [(e.name, Path(e.params.output_dir)) for e in emitters_of_type(data.tenant, "csv")]
    prometheus = [(e.name, e.params.build()) for e in emitters_of_type(data.tenant, "prometheus")]
    enabled = topic_overlay_settings(data) is not None
    outcome: list[TopicOutputDay] = []
    records: list[tuple[str, date, EmissionStatus, str | None, list[str]]] = []
    for day in sorted(set(days)):
        result = TopicOutputDay(day)
        verdict = reconcile_topics_day(data, day)
        rows = topic_rows_for_day(data.db, data.ecosystem, data.tenant_id, day) if enabled else []
        if not enabled:
            result.note = "topic_attribution is not enabled"
        elif not verdict.passed:
            result.status, result.note = "blocked", "; ".join(verdict.mismatches[:3])
        else:
            result.status, result.rows = "emitted", len(rows)
        status, note = result.status, result.note  # each emitter's own outcome, whatever another's was
        publish = status == "emitted"
        facts = PeriodFacts(
            end=day + timedelta(days=1),
            currency=period_currency(data, [day]),
            settled=is_settled(day, now.date(), data.tenant.settle_days),
        )
        for name, directory in csv_dirs:
            try:
                written = (
                    [write_topic_csv(directory, data.tenant_id, day, rows, facts.settled)] if publish else []
                )
                removed = [] if publish else remove_topic_csv(directory, data.tenant_id, day)
            except EmitterError as exc:
                result.status, result.note = "failed", str(exc)
                records.append((name, day, "failed", str(exc), []))
                continue
            result.outputs += written
            records.append((name, day, status, _note(note, removed), written))
        for name, emitter in prometheus:
            try:
                if publish:
                    emitter.emit_topics(data.tenant_id, data.ecosystem, day, rows, facts)
                    removed = []
                else:
                    removed = emitter.retract_topics(data.tenant_id, day)
            except EmitterError as exc:
                result.status, result.note = "failed", str(exc)
                records.append((name, day, "failed", str(exc), []))
                continue
            records.append((name, day, status, _note(note, removed), []))
        outcome.append(result)
    for name, emitter in prometheus:
        try:
            emitter.publish(
                data.tenant_id
            )  # rebuilds the file; a Pushgateway gets the chargeback's newest day
        except EmitterError as exc:
            records = [
                (n, d, "failed" if n == name else st, str(exc) if n == name else nt, w)
                for n, d, st, nt, w in records
            ]
            for result in outcome:
                result.status, result.note = "failed", str(exc)
            continue
        for result in outcome:
            if result.status == "emitted":
                result.outputs.append(str(emitter.file_for(data.tenant_id)))
    with data.db.transaction() as tx:
        for name, day, status, note, written in records:
            record_emission(tx, data.ecosystem, data.tenant_id, name, PIPELINE, day, status, now, note)
            record_outputs(tx, data.ecosystem, data.tenant_id, name, written, now)
    problems = [f"{r.day}: {r.status} ({r.note})" for r in outcome if r.status in ("blocked", "failed")]
    if problems:
        raise TopicOutputsNotPublished(
            f"tenant {data.tenant.name}: topic outputs not published: " + "; ".join(problems), outcome
        )
    return outcome


def _note(note: str | None, removed: list[str]) -> str | None:
    if removed:
        return f"{note or 'withdrawn'}; removed {', '.join(removed)}"
    return note


def pending_topic_outputs(data: TenantData, now: datetime) -> list[PendingEmission]:
    """Days whose topic outputs failed at an emitter and are still within its `lookback_days`: what the
    emission retry sensor asks `topic_outputs` for again. A blocked day is not owed: it is published once a
    recalculation makes its topic rows reconcile. Nor is anything owed by a tenant without the overlay: its
    topic outputs only withdraw, and a failed push of its OpenMetrics file is the chargeback emitter's to
    retry."""
    if topic_overlay_settings(data) is None:
        return []
    pending = []
    for kind in EMITTER_TYPES:
        for config in emitters_of_type(data.tenant, kind):
            since = owed_since(data, config, now)
            for record in emission_records(data.db, data.ecosystem, data.tenant_id, config.name, PIPELINE):
                if record.status == "failed" and record.date >= since:
                    state = get_state(data.db, data.ecosystem, data.tenant_id, record.date)
                    pending.append(
                        PendingEmission(
                            record.date, config.name, record.attempt_count, "failed", state.calculation_run_id
                        )
                    )
    return sorted(pending, key=lambda p: (p.day, p.emitter))
