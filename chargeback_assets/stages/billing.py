"""Billing lines: fetch the tenant's bill once for the requested days and replace each day atomically.

Every line passes one rule before it is stored, whatever the ecosystem: an amount that is not finite or is
beyond the tenant's `max_line_amount` makes the line malformed (kept, charged nothing, its day held back
from emission; engine/bill_quality.py), so one absurd line costs its own day and not the whole request. A line
dated outside the requested range is a stray: it is charged to no day, but is stored with the first
requested day (`billing_strays`), logged, and named by the `billing_well_formed` check.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from chargeback_assets.ecosystems.base import FetchedDays, IncompleteBilling, RawCostSource, SourceError
from chargeback_assets.engine.bill_quality import duplicate_rows, is_malformed, screen_amount
from chargeback_assets.engine.fingerprint import billing_fingerprint
from chargeback_assets.engine.models import BillingLine, currency_of
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.suspension import gather_failed, gather_succeeded
from chargeback_assets.storage.billing import replace_billing_day
from chargeback_assets.storage.pipeline import record_fingerprint, update_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BillingDay:
    day: date
    lines: int
    billed: Decimal
    fingerprint: str
    malformed: int
    duplicates: int
    strays: int
    currency: str


@dataclass(slots=True)
class FetchedBill:
    """The source's lines of each requested day, the days it could not produce (with why), and the lines
    it sent for days outside the request, kept with the first requested day it did produce."""

    by_day: dict[date, list[BillingLine]]
    failed: dict[date, str]
    strays: dict[date, list[BillingLine]] = field(default_factory=dict)


def fetch_bill(scope: TenantScope, days: Sequence[date]) -> FetchedBill:
    """The source's current lines of each requested day (one request range covering them all), each
    screened by the tenant's `max_line_amount`.

    A source that could price only some days reports the rest as failed; the good days are still used. A
    source that answered nothing raises its `SourceError`.
    """
    ordered = sorted(set(days))
    failed: dict[date, str] = {}
    try:
        lines = list(scope.runtime.cost_source.gather(ordered[0], ordered[-1] + timedelta(days=1)))
    except IncompleteBilling as exc:
        lines = exc.lines
        failed = {day: str(exc) for day in exc.failed_days if day in ordered}
    return _bill_of(scope, ordered, lines, failed)


def _bill_of(
    scope: TenantScope, ordered: Sequence[date], lines: Iterable[BillingLine], failed: dict[date, str]
) -> FetchedBill:
    """The lines split by day and screened, strays set apart (see `FetchedBill`)."""
    start, end = ordered[0], ordered[-1] + timedelta(days=1)
    by_day: dict[date, list[BillingLine]] = defaultdict(list)
    strays: list[BillingLine] = []
    for line in lines:
        screened = screen_amount(line, scope.tenant.max_line_amount)
        if start <= line.timestamp.date() < end:
            by_day[line.timestamp.date()].append(screened)
        else:
            strays.append(screened)
    produced = [day for day in ordered if day not in failed]
    if strays:
        log.warning(
            "tenant %s: the billing source sent %d line(s) dated outside %s..%s; not charged: %s",
            scope.tenant.name,
            len(strays),
            start,
            ordered[-1],
            ", ".join(f"{line.timestamp.date()} {line.resource_id}" for line in strays),
        )
    return FetchedBill(
        {day: by_day.get(day, []) for day in produced},
        failed,
        {produced[0]: strays} if strays and produced else {},
    )


SOURCE_DAYS_KEPT = 4096
"""Days whose fingerprint a process keeps by the digest of their rows: the recalculation windows of every
tenant many times over (at most 62 days each), a few hundred bytes a day."""

_fingerprints_by_rows: dict[tuple[str, str, date, str, Decimal], str] = {}
"""(ecosystem, tenant id, day, digest of the day's rows, max_line_amount) -> the day's fingerprint.

A cache of a pure function: equal rows read with the same screen give equal lines. It lives as long as the
process (a code server evaluates the sensor tick after tick), so a deployment with other code starts empty
and reads every day again."""


def current_fingerprints(scope: TenantScope, days: Sequence[date]) -> dict[date, str]:
    """What each day's bill looks like at the source right now (for the billing-change sensor).

    Only the days whose rows changed since this process last saw them are read into lines, when the source
    can fetch its rows first (`RawCostSource`): the sensor fetches the whole recalculation window on every
    tick, most days of it unchanged, and reading a week of a large organization's rows was most of a tick.

    The collector is not paused here, unlike in the stages: a tick with it paused was a fifth faster, but
    what it left behind stayed resident in the process (the backfill benchmark's later backfills peaked
    ~25 MB higher), and the sensor's process lives for as long as the deployment."""
    source = scope.runtime.cost_source
    ordered = sorted(set(days))
    try:
        if isinstance(source, RawCostSource):
            rows = source.fetch_rows(ordered[0], ordered[-1] + timedelta(days=1))
            if rows.digests is not None:
                return _fingerprints_by_digest(scope, ordered, rows, rows.digests)
            fetched = _bill_of(scope, ordered, rows.lines(), {})
        else:
            fetched = fetch_bill(scope, ordered)
    except SourceError as exc:
        raise scope.fail("billing source", days, exc) from exc
    return {day: billing_fingerprint(lines) for day, lines in fetched.by_day.items()}


def _fingerprints_by_digest(
    scope: TenantScope, ordered: Sequence[date], rows: FetchedDays, digests: Mapping[date, str]
) -> dict[date, str]:
    """Each day's fingerprint, kept from an earlier tick when its rows have the digest they had then."""
    keys = {
        day: (scope.ecosystem, scope.tenant_id, day, digests[day], scope.tenant.max_line_amount)
        for day in ordered
    }
    fingerprints = {
        day: seen for day in ordered if (seen := _fingerprints_by_rows.get(keys[day])) is not None
    }
    unread = [day for day in ordered if day not in fingerprints]
    if unread:
        for day, lines in _bill_of(scope, unread, rows.lines(unread), {}).by_day.items():
            fingerprints[day] = _fingerprints_by_rows[keys[day]] = billing_fingerprint(lines)
        while len(_fingerprints_by_rows) > SOURCE_DAYS_KEPT:
            del _fingerprints_by_rows[next(iter(_fingerprints_by_rows))]
    return {day: fingerprints[day] for day in ordered}


@collector_paused()
def gather_billing(scope: TenantScope, days: Sequence[date]) -> list[BillingDay]:
    """Replace each day's billing lines and record the fingerprint they were built from.

    A gather that got no day at all counts towards the tenant's suspension; one that got any day lifts it.
    """
    now = datetime.now(UTC)
    result = []
    try:
        fetched = fetch_bill(scope, days)
    except SourceError as exc:
        raise gather_failed(scope, "billing", days, exc) from exc
    if not fetched.by_day:
        raise gather_failed(scope, "billing", fetched.failed, fetched.failed[min(fetched.failed)])
    for day, lines in fetched.by_day.items():
        fingerprint = billing_fingerprint(lines)
        strays = fetched.strays.get(day, [])
        with scope.db.transaction() as tx:
            replace_billing_day(tx, scope.ecosystem, scope.tenant_id, day, lines, strays)
            record_fingerprint(tx, scope.ecosystem, scope.tenant_id, day, fingerprint, now)
            update_state(tx, scope.ecosystem, scope.tenant_id, day, billing_gathered=True)
            gather_succeeded(tx, scope, "billing")
        result.append(
            BillingDay(
                day=day,
                lines=len(lines),
                billed=sum((line.total_cost for line in lines), ZERO),
                fingerprint=fingerprint,
                malformed=sum(1 for line in lines if is_malformed(line)),
                duplicates=sum(duplicate_rows(line) for line in lines),
                strays=len(strays),
                currency=currency_of(lines),
            )
        )
    if fetched.failed:
        first = min(fetched.failed)
        raise scope.fail("billing source", fetched.failed, fetched.failed[first])
    return result
