"""Suspension: a tenant whose billing or inventory gather failed `gather_failure_threshold` times in a row.

The launch paths the project drives by itself (the daily schedule, the billing-change sensor, the
continuation sensor) skip a suspended tenant and say so, naming it and how to resume: relaunching a tenant
whose source is down only piles up failed runs. A run an operator launches (UI, CLI) is never held back,
since someone asked for it; its gathers count like any other, and the first one of the failing source that
succeeds lifts the suspension. Each source counts apart: a shared counter would be reset by whichever
source still answers, and a tenant whose billing API is down would never be suspended. Counters live in
the database because every Dagster run is a fresh process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from chargeback_assets.stages.scope import StageError, TenantData
from chargeback_assets.storage.database import Transaction
from chargeback_assets.storage.pipeline import GatherCounter, get_counter, set_counter

GatherSource = Literal["billing", "inventory"]
GATHER_SOURCES: tuple[GatherSource, ...] = ("billing", "inventory")


def _counter_key(source: GatherSource) -> str:
    return f"gather:{source}"


def gather_failed(data: TenantData, source: GatherSource, days: Iterable[date], cause: object) -> StageError:
    """Count a gather of `source` that got nothing at all; the error to fail its days with says the count."""
    key = _counter_key(source)
    with data.db.transaction() as tx:
        counter = get_counter(tx, data.ecosystem, data.tenant_id, key)
        failures = counter.consecutive_failures + 1
        set_counter(tx, data.ecosystem, data.tenant_id, key, replace(counter, consecutive_failures=failures))
    threshold = data.tenant.gather_failure_threshold
    return data.fail(
        f"{source} source", days, f"{cause} ({failures} consecutive failed gathers, threshold {threshold})"
    )


def gather_succeeded(tx: Transaction, data: TenantData, source: GatherSource) -> None:
    """A gather of `source` got something: its failures no longer run in a row."""
    set_counter(tx, data.ecosystem, data.tenant_id, _counter_key(source), GatherCounter())


@dataclass(frozen=True, slots=True)
class Suspension:
    tenant: str
    source: GatherSource
    failures: int
    threshold: int

    def __str__(self) -> str:
        return (
            f"{self.tenant} is suspended: its last {self.failures} {self.source} gathers failed "
            f"(gather_failure_threshold {self.threshold}), so scheduled and sensor runs skip it. To resume, "
            f"fix the {self.source} source, then launch {self.tenant} by hand (Materialize in the Dagster "
            f"UI, or dagster asset materialize): its first successful {self.source} gather lifts the "
            "suspension."
        )


def suspension(data: TenantData) -> Suspension | None:
    """Why the tenant is suspended, or None when every source's failures in a row stay under the threshold."""
    threshold = data.tenant.gather_failure_threshold
    for source in GATHER_SOURCES:
        counter = get_counter(data.db, data.ecosystem, data.tenant_id, _counter_key(source))
        failures = counter.consecutive_failures
        if failures >= threshold:
            return Suspension(data.tenant.name, source, failures, threshold)
    return None
