"""Pipeline bookkeeping: per-day state, the audit of Dagster runs, and gather counters.

Each Dagster run is its own process, so anything one run must know about an earlier one (the billing
fingerprint the change sensor compares with, how many gathers in a row came back empty) lives here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from chargeback_assets.redaction import scrub
from chargeback_assets.storage.codec import (
    day_text,
    optional_timestamp_text,
    parse_day,
    parse_timestamp,
    timestamp_text,
)
from chargeback_assets.storage.database import Source, Transaction


@dataclass(frozen=True, slots=True)
class PipelineState:
    """What has been done for one tenant-day. A day never touched reads as all-false."""

    ecosystem: str
    tenant_id: str
    tracking_date: date
    billing_gathered: bool = False
    resources_gathered: bool = False
    chargeback_calculated: bool = False
    metrics_fetch_failed: bool = False
    billing_fingerprint: str | None = None
    billing_fingerprint_at: datetime | None = None
    calculation_id: str | None = None
    calculation_completed_at: datetime | None = None
    calculation_run_id: str | None = None
    reconciled_calculation_id: str | None = None
    """The calculation the reconciliation check last verified; `reconciliation_passed` is its verdict."""
    reconciliation_passed: bool = False
    inventory_errors: tuple[str, ...] = ()
    """What failed in the day's last inventory gather (empty when it was complete or never ran)."""
    calculation_inventory_errors: tuple[str, ...] = ()
    """What failed in the gather the day's current chargeback was calculated from: its `inventory_errors`
    when it was calculated."""
    usage_fingerprint: str | None = None
    resolution_fingerprint: str | None = None
    calculation_fingerprint: str | None = None
    """The billing fingerprint the day's usage metrics, identity resolutions and chargeback were built from:
    a stage whose fingerprint differs from `billing_fingerprint` is older than the stored bill."""
    topic_attribution_calculated: bool = False
    usage_queries: str | None = None
    """A digest of the range queries the day's stored usage answers (stages/usage.py: query_digest)."""

    @property
    def reconciliation_current(self) -> bool:
        """Whether the stored verdict is about the day's current chargeback and bill: a calculation built
        from an older bill than the stored one must be judged again, against that bill."""
        return (
            self.calculation_id is not None
            and self.reconciled_calculation_id == self.calculation_id
            and self.calculation_fingerprint == self.billing_fingerprint
        )


_FLAGS = (
    "billing_gathered",
    "resources_gathered",
    "chargeback_calculated",
    "metrics_fetch_failed",
    "reconciliation_passed",
    "topic_attribution_calculated",
)
_TIMES = ("billing_fingerprint_at", "calculation_completed_at")
_TEXTS = (
    "billing_fingerprint",
    "calculation_id",
    "calculation_run_id",
    "reconciled_calculation_id",
    "usage_fingerprint",
    "resolution_fingerprint",
    "calculation_fingerprint",
    "usage_queries",
)
_LISTS = ("inventory_errors", "calculation_inventory_errors")
_STATE_FIELDS = (*_FLAGS, *_TIMES, *_TEXTS, *_LISTS)
_STATE_COLUMNS = ", ".join(_STATE_FIELDS)


def get_state(source: Source, ecosystem: str, tenant_id: str, day: date) -> PipelineState:
    row = source.conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM pipeline_state "
        "WHERE ecosystem = ? AND tenant_id = ? AND tracking_date = ?",
        (ecosystem, tenant_id, day_text(day)),
    ).fetchone()
    if row is None:
        return PipelineState(ecosystem, tenant_id, day)
    return _state(ecosystem, tenant_id, day, row)


def _state(ecosystem: str, tenant_id: str, day: date, columns: Iterable[Any]) -> PipelineState:
    values = {name: _from_column(name, value) for name, value in zip(_STATE_FIELDS, columns, strict=True)}
    return PipelineState(ecosystem, tenant_id, day, **values)


def calculated_days(source: Source, ecosystem: str, tenant_id: str, since: date) -> list[PipelineState]:
    """The state of every day on or after `since` whose chargeback was calculated, by date."""
    cursor = source.conn.execute(
        f"SELECT tracking_date, {_STATE_COLUMNS} FROM pipeline_state WHERE ecosystem = ? AND tenant_id = ? "
        "AND chargeback_calculated = 1 AND tracking_date >= ? ORDER BY tracking_date",
        (ecosystem, tenant_id, day_text(since)),
    )
    return [_state(ecosystem, tenant_id, parse_day(day), values) for day, *values in cursor]


def update_state(tx: Transaction, ecosystem: str, tenant_id: str, day: date, **changes: Any) -> PipelineState:
    """Set some fields of a tenant-day's state (creating it if needed); the others keep their values."""
    unknown = sorted(set(changes) - set(_STATE_FIELDS))
    if unknown:
        raise ValueError(f"unknown pipeline state field(s) {unknown}; known: {sorted(_STATE_FIELDS)}")
    if not changes:
        raise ValueError("update_state needs at least one field to change")
    names = sorted(changes)
    values = [_to_column(name, changes[name]) for name in names]
    tx.conn.execute(
        f"INSERT INTO pipeline_state (ecosystem, tenant_id, tracking_date, {', '.join(names)}) "
        f"VALUES (?, ?, ?{', ?' * len(names)}) "
        "ON CONFLICT (ecosystem, tenant_id, tracking_date) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in names),
        (ecosystem, tenant_id, day_text(day), *values),
    )
    return get_state(tx, ecosystem, tenant_id, day)


def record_fingerprint(
    tx: Transaction, ecosystem: str, tenant_id: str, day: date, fingerprint: str, at: datetime
) -> PipelineState:
    """Remember the fingerprint of the bill a partition was built from, for the billing-change sensor."""
    return update_state(
        tx, ecosystem, tenant_id, day, billing_fingerprint=fingerprint, billing_fingerprint_at=at
    )


def recorded_fingerprints(
    source: Source, ecosystem: str, tenant_id: str, days: Iterable[date]
) -> dict[date, str]:
    """day -> recorded fingerprint, for the days that have one."""
    wanted = sorted({day_text(d) for d in days})
    if not wanted:
        return {}
    cursor = source.conn.execute(
        "SELECT tracking_date, billing_fingerprint FROM pipeline_state WHERE ecosystem = ? AND tenant_id = ? "
        f"AND billing_fingerprint IS NOT NULL AND tracking_date IN ({', '.join('?' * len(wanted))}) "
        "ORDER BY tracking_date",
        (ecosystem, tenant_id, *wanted),
    )
    return {parse_day(d): fingerprint for d, fingerprint in cursor}


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One Dagster run's work for one tenant (a backfill run spanning tenants gives one row per tenant)."""

    run_id: str
    ecosystem: str
    tenant_id: str
    tenant_name: str
    dates: tuple[date, ...]
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    rows_written: int = 0
    error_message: str | None = None


FAILED = "failed"
"""The status of a tenant's work that failed in a run (the billing-change sensor requests its days again)."""

_RUN_COLUMNS = (
    "run_id, ecosystem, tenant_id, tenant_name, dates_json, status, started_at, ended_at, rows_written, "
    "error_message"
)


def record_run(tx: Transaction, run: PipelineRun) -> None:
    """Insert or overwrite a run's audit row (the run-audit sensor calls this at start and at the end); the
    error message is scrubbed of secrets (redaction.py), as it quotes the run's step errors."""
    what = f"pipeline run {run.run_id}"
    tx.conn.execute(
        f"INSERT INTO pipeline_runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 10)}) "
        "ON CONFLICT (ecosystem, tenant_id, run_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS.split(", ")[3:]),
        (
            run.run_id,
            run.ecosystem,
            run.tenant_id,
            run.tenant_name,
            json.dumps([day_text(d) for d in run.dates]),
            run.status,
            timestamp_text(run.started_at, f"{what}: started_at"),
            optional_timestamp_text(run.ended_at, f"{what}: ended_at"),
            run.rows_written,
            None if run.error_message is None else scrub(run.error_message),
        ),
    )


def get_run(source: Source, ecosystem: str, tenant_id: str, run_id: str) -> PipelineRun | None:
    runs = _runs(source, ecosystem, tenant_id, "AND run_id = ?", (run_id,))
    return runs[0] if runs else None


def recent_runs(source: Source, ecosystem: str, tenant_id: str, limit: int = 100) -> list[PipelineRun]:
    """The tenant's runs, newest first."""
    return _runs(source, ecosystem, tenant_id, "ORDER BY started_at DESC, run_id LIMIT ?", (limit,))


def last_runs(
    source: Source, ecosystem: str, tenant_id: str, days: Iterable[date]
) -> dict[date, PipelineRun]:
    """day -> the latest audited run that covered it, for the days some run covered.

    No run covers a day before the day has begun, so only runs started since the first day are read.
    """
    wanted = sorted({day_text(d) for d in days})
    if not wanted:
        return {}
    cursor = source.conn.execute(
        f"SELECT {_RUN_COLUMNS}, covered.value FROM pipeline_runs, "
        f"{source.dialect.json_items('dates_json', 'covered')} "
        f"WHERE ecosystem = ? AND tenant_id = ? AND started_at >= ? "
        f"AND covered.value IN ({', '.join('?' * len(wanted))}) ORDER BY started_at, run_id",
        (ecosystem, tenant_id, wanted[0], *wanted),
    )
    return {parse_day(row[-1]): _run(row[:-1]) for row in cursor}


def _runs(
    source: Source, ecosystem: str, tenant_id: str, tail: str, params: tuple[Any, ...]
) -> list[PipelineRun]:
    cursor = source.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM pipeline_runs WHERE ecosystem = ? AND tenant_id = ? {tail}",
        (ecosystem, tenant_id, *params),
    )
    return [_run(row) for row in cursor]


def _run(row: tuple[Any, ...]) -> PipelineRun:
    (
        run_id,
        ecosystem,
        tenant_id,
        tenant_name,
        dates_json,
        status,
        started_at,
        ended_at,
        rows_written,
        error_message,
    ) = row
    return PipelineRun(
        run_id=run_id,
        ecosystem=ecosystem,
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        dates=tuple(parse_day(d) for d in json.loads(dates_json)),
        status=status,
        started_at=parse_timestamp(started_at),
        ended_at=parse_timestamp(ended_at),
        rows_written=rows_written,
        error_message=error_message,
    )


@dataclass(frozen=True, slots=True)
class GatherCounter:
    """Consecutive empty and failed gathers of one scan key (`resources:<type>`, `identities`)."""

    consecutive_empty: int = 0
    consecutive_failures: int = 0


def get_counter(source: Source, ecosystem: str, tenant_id: str, scan_key: str) -> GatherCounter:
    row = source.conn.execute(
        "SELECT consecutive_empty, consecutive_failures FROM gather_counters "
        "WHERE ecosystem = ? AND tenant_id = ? AND scan_key = ?",
        (ecosystem, tenant_id, scan_key),
    ).fetchone()
    return GatherCounter() if row is None else GatherCounter(*row)


def set_counter(
    tx: Transaction, ecosystem: str, tenant_id: str, scan_key: str, counter: GatherCounter
) -> None:
    tx.conn.execute(
        "INSERT INTO gather_counters "
        "(ecosystem, tenant_id, scan_key, consecutive_empty, consecutive_failures) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (ecosystem, tenant_id, scan_key) DO UPDATE SET "
        "consecutive_empty = excluded.consecutive_empty, "
        "consecutive_failures = excluded.consecutive_failures",
        (ecosystem, tenant_id, scan_key, counter.consecutive_empty, counter.consecutive_failures),
    )


def _to_column(name: str, value: Any) -> Any:
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise TypeError(f"pipeline state {name} must be a bool, got {value!r}")
        return int(value)
    if name in _TIMES:
        return optional_timestamp_text(value, f"pipeline state {name}")
    if name in _LISTS:
        if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
            raise TypeError(f"pipeline state {name} must be a tuple of strings, got {value!r}")
        return json.dumps(value) if value else None
    if value is not None and not isinstance(value, str):
        raise TypeError(f"pipeline state {name} must be a string or None, got {value!r}")
    return value


def _from_column(name: str, value: Any) -> Any:
    if name in _FLAGS:
        return bool(value)
    if name in _TIMES:
        return parse_timestamp(value)
    if name in _LISTS:
        return tuple(json.loads(value)) if value else ()
    return value
