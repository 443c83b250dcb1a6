"""One record per (tenant, emitter, pipeline, date): whether that output was published, and how many tries;
and every place a tenant's output was published, so it can be removed with the tenant."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from chargeback_assets.redaction import scrub
from chargeback_assets.storage.codec import day_text, parse_day, parse_timestamp, timestamp_text
from chargeback_assets.storage.database import Source, Transaction

EmissionStatus = Literal["emitted", "failed", "skipped", "blocked", "withdrawn"]
"""`blocked`: the day's chargeback may not be published (it does not reconcile with its bill, its bill holds a
malformed line, or it was calculated from an incomplete inventory), so nothing was; `last_error` says why.
`withdrawn`: the day has no chargeback rows any more, so what an earlier emission published was removed."""
_STATUSES = get_args(EmissionStatus)


@dataclass(frozen=True, slots=True)
class EmissionRecord:
    ecosystem: str
    tenant_id: str
    emitter_name: str
    pipeline: str
    date: date
    status: str
    attempt_count: int
    last_error: str | None
    updated_at: datetime
    published: PublishedBill | None = None
    """What the last published output of the day was built from (None before one was)."""


@dataclass(frozen=True, slots=True)
class PublishedBill:
    """The bill an emitted output was built from: its fingerprint, whether the day was settled when it was
    published, and whether a settled day's bill changed after it was published (sticky: the day stays
    marked restated)."""

    billing_fingerprint: str | None
    settled: bool
    restated: bool = False


_COLUMNS = (
    "emitter_name, pipeline, date, status, attempt_count, last_error, updated_at, billing_fingerprint, "
    "settled, restated"
)


def record_emission(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    emitter_name: str,
    pipeline: str,
    day: date,
    status: EmissionStatus,
    at: datetime,
    error: str | None = None,
    published: PublishedBill | None = None,
) -> EmissionRecord:
    """Record one attempt: the first makes the record with attempt_count 1, each later one adds 1.

    `error` is scrubbed of secrets (redaction.py): it may quote a destination's answer. `published` (for an
    emitted day) replaces what the record says was published; an attempt without one keeps it.
    """
    if status not in _STATUSES:
        raise ValueError(f"emission status must be one of {list(_STATUSES)}, got {status!r}")
    tx.conn.execute(
        f"INSERT INTO emission_records (ecosystem, tenant_id, {_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) "
        "ON CONFLICT (ecosystem, tenant_id, emitter_name, pipeline, date) DO UPDATE SET "
        "status = excluded.status, attempt_count = emission_records.attempt_count + 1, "
        "last_error = excluded.last_error, updated_at = excluded.updated_at, "
        "billing_fingerprint = CASE WHEN excluded.settled IS NULL THEN emission_records.billing_fingerprint "
        "ELSE excluded.billing_fingerprint END, "
        "settled = COALESCE(excluded.settled, emission_records.settled), "
        "restated = CASE WHEN excluded.restated > emission_records.restated THEN excluded.restated "
        "ELSE emission_records.restated END",
        (
            ecosystem,
            tenant_id,
            emitter_name,
            pipeline,
            day_text(day),
            status,
            None if error is None else scrub(error),
            timestamp_text(at, f"emission of {emitter_name}/{pipeline} for {day}: at"),
            None if published is None else published.billing_fingerprint,
            None if published is None else int(published.settled),
            int(published is not None and published.restated),
        ),
    )
    (record,) = emission_records(tx, ecosystem, tenant_id, emitter_name, pipeline, day)
    return record


@dataclass(frozen=True, slots=True)
class PublishedOutput:
    """A place an emitter published a tenant's output: a file path, or a Pushgateway group URL."""

    emitter_name: str
    location: str


def record_outputs(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    emitter_name: str,
    locations: Iterable[str],
    at: datetime,
) -> None:
    """Remember where an emitter published the tenant's output; a location already known keeps its first
    date. A file later withdrawn stays listed: purging skips what is no longer there."""
    when = timestamp_text(at, f"outputs of {emitter_name}: at")
    tx.conn.executemany(
        "INSERT INTO published_outputs "
        "(ecosystem, tenant_id, emitter_name, location, first_published_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(ecosystem, tenant_id, emitter_name, location, when) for location in sorted(set(locations))],
    )


def published_outputs(source: Source, ecosystem: str, tenant_id: str) -> list[PublishedOutput]:
    """Every place the tenant's outputs were published, by emitter and location."""
    cursor = source.conn.execute(
        "SELECT emitter_name, location FROM published_outputs WHERE ecosystem = ? AND tenant_id = ? "
        "ORDER BY emitter_name, location",
        (ecosystem, tenant_id),
    )
    return [PublishedOutput(name, location) for name, location in cursor]


def emission_records(
    source: Source,
    ecosystem: str,
    tenant_id: str,
    emitter_name: str | None = None,
    pipeline: str | None = None,
    day: date | None = None,
) -> list[EmissionRecord]:
    """The tenant's records, optionally narrowed, ordered by emitter, pipeline and date."""
    filters = {
        "emitter_name": emitter_name,
        "pipeline": pipeline,
        "date": None if day is None else day_text(day),
    }
    where = "".join(f" AND {column} = ?" for column, value in filters.items() if value is not None)
    cursor = source.conn.execute(
        f"SELECT {_COLUMNS} FROM emission_records WHERE ecosystem = ? AND tenant_id = ?{where} "
        "ORDER BY emitter_name, pipeline, date",
        (ecosystem, tenant_id, *(value for value in filters.values() if value is not None)),
    )
    return [
        EmissionRecord(
            ecosystem,
            tenant_id,
            name,
            pipe,
            parse_day(d),
            status,
            attempts,
            error,
            parse_timestamp(at),
            None if settled is None else PublishedBill(fingerprint, bool(settled), bool(restated)),
        )
        for name, pipe, d, status, attempts, error, at, fingerprint, settled, restated in cursor
    ]
