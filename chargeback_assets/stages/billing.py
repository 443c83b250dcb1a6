"""Billing lines: fetch the tenant's bill once for the requested days and replace each day atomically."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from chargeback_assets.ecosystems.base import IncompleteBilling, SourceError
from chargeback_assets.engine.fingerprint import billing_fingerprint
from chargeback_assets.engine.models import BillingLine, currency_of
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.billing import replace_billing_day
from chargeback_assets.storage.pipeline import record_fingerprint, update_state


@dataclass(frozen=True, slots=True)
class BillingDay:
    day: date
    lines: int
    billed: Decimal
    fingerprint: str
    malformed: int
    currency: str


@dataclass(slots=True)
class FetchedBill:
    """The source's lines of each requested day, and the days it could not produce (with why)."""

    by_day: dict[date, list[BillingLine]]
    failed: dict[date, str]


def fetch_bill(scope: TenantScope, days: Sequence[date]) -> FetchedBill:
    """The source's current lines of each requested day (one request range covering them all).

    A source that could price only some days reports the rest as failed; the good days are still used.
    """
    ordered = sorted(set(days))
    failed: dict[date, str] = {}
    try:
        lines = list(scope.runtime.cost_source.gather(ordered[0], ordered[-1] + timedelta(days=1)))
    except IncompleteBilling as exc:
        lines = exc.lines
        failed = {day: str(exc) for day in exc.failed_days if day in ordered}
    except SourceError as exc:
        raise scope.fail("billing source", ordered, exc) from exc
    by_day: dict[date, list[BillingLine]] = defaultdict(list)
    for line in lines:
        by_day[line.timestamp.date()].append(line)
    return FetchedBill({day: by_day.get(day, []) for day in ordered if day not in failed}, failed)


def current_fingerprints(scope: TenantScope, days: Sequence[date]) -> dict[date, str]:
    """What each day's bill looks like at the source right now (for the billing-change sensor)."""
    return {day: billing_fingerprint(lines) for day, lines in fetch_bill(scope, days).by_day.items()}


@collector_paused()
def gather_billing(scope: TenantScope, days: Sequence[date]) -> list[BillingDay]:
    """Replace each day's billing lines and record the fingerprint they were built from."""
    now = datetime.now(UTC)
    result = []
    fetched = fetch_bill(scope, days)
    for day, lines in fetched.by_day.items():
        fingerprint = billing_fingerprint(lines)
        with scope.db.transaction() as tx:
            replace_billing_day(tx, scope.ecosystem, scope.tenant_id, day, lines)
            record_fingerprint(tx, scope.ecosystem, scope.tenant_id, day, fingerprint, now)
            update_state(tx, scope.ecosystem, scope.tenant_id, day, billing_gathered=True)
        result.append(
            BillingDay(
                day=day,
                lines=len(lines),
                billed=sum((line.total_cost for line in lines), ZERO),
                fingerprint=fingerprint,
                malformed=sum(1 for line in lines if line.metadata.get("malformed")),
                currency=currency_of(lines),
            )
        )
    if fetched.failed:
        first = min(fetched.failed)
        raise scope.fail("billing source", fetched.failed, fetched.failed[first])
    return result
