"""One tenant-day of billing lines turned into chargeback rows that sum exactly to the bill.

This is where the invariants are enforced rather than hoped for: each line's rows are checked to sum to its
`total_cost`; a line whose allocation raises is tried again at once and, once it has failed `retry_limit`
times, charged in full to UNALLOCATED with method ALLOCATION_FAILED.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from chargeback_assets.engine.allocation import Allocator, line_row, make_row
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import (
    UNALLOCATED,
    AllocationContext,
    AllocationMethod,
    BillingLine,
    ChargebackRow,
    CostType,
    IdentityResolution,
    IdentitySet,
    Resource,
    ResourceUsage,
    Window,
)
from chargeback_assets.engine.money import ZERO, quantize

T = TypeVar("T")

Resolver = Callable[[BillingLine, InventoryView, ResourceUsage | None], IdentityResolution]

INACTIVE_DETAIL = "resource_inactive_fraction"
METRICS_FAILED_DETAIL = "metrics_fetch_failed"
"""Set on every row of a line whose usage could not be fetched, so the fallback is never silent."""

_FIXED_DURATIONS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}


class ReconciliationError(AssertionError):
    """A line's rows do not sum to its bill: never written, never emitted."""


def line_window(line: BillingLine, custom_hours: Mapping[str, int] | None = None) -> Window:
    """The period a line bills for, from its granularity."""
    start = line.timestamp
    if line.granularity in _FIXED_DURATIONS:
        return Window(start, start + _FIXED_DURATIONS[line.granularity])
    if line.granularity == "monthly":
        days = calendar.monthrange(start.year, start.month)[1]
        return Window(start, start + timedelta(days=days))
    if custom_hours and line.granularity in custom_hours:
        return Window(start, start + timedelta(hours=custom_hours[line.granularity]))
    raise ValueError(f"unknown billing granularity {line.granularity!r} on line {line.product_type}")


def active_fraction(resource: Resource | None, window: Window) -> Decimal:
    """The share of `window` during which `resource` existed (1 when unknown or the window is empty)."""
    if resource is None or window.seconds <= 0:
        return Decimal(1)
    start = max(resource.created_at or window.start, window.start)
    end = min(resource.deleted_at or window.end, window.end)
    if end <= start:
        return Decimal(0)
    return Decimal(str((end - start).total_seconds())) / Decimal(str(window.seconds))


@dataclass(frozen=True, slots=True)
class LineFailure:
    line: BillingLine
    attempts: int
    error: str


@dataclass(slots=True)
class DayAllocation:
    """The outcome of one tenant-day: rows for every line, the lines booked as failed, and how many failed
    attempts each line made in this allocation (by line id), for the caller to add to the stored counts."""

    rows: list[ChargebackRow] = field(default_factory=list)
    exhausted: list[LineFailure] = field(default_factory=list)
    failed_attempts: dict[str, int] = field(default_factory=dict)


def check_line_reconciles(line: BillingLine, rows: Sequence[ChargebackRow]) -> None:
    allocated = sum((row.amount for row in rows), ZERO)
    if allocated != line.total_cost:
        raise ReconciliationError(
            f"rows of {line.product_type} on {line.resource_id or '<org>'} sum to {allocated}, "
            f"billed {line.total_cost}"
        )


def allocate_line(
    line: BillingLine,
    allocator: Allocator,
    resolution: IdentityResolution,
    *,
    window: Window,
    resource: Resource | None = None,
    usage: ResourceUsage | None = None,
    metrics_fetch_failed: bool = False,
    params: Mapping[str, Any] | None = None,
) -> list[ChargebackRow]:
    """Allocate one line in full and prove it.

    Provider-prorated lines are charged whole. A constructed line (cost model) for a resource that existed
    for part of the window charges only the active share through the allocator; the inactive share goes to
    the resource itself, so the line still sums to its bill.
    """
    total = line.total_cost
    fraction = Decimal(1) if line.provider_prorated else active_fraction(resource, window)
    split = total if fraction >= 1 else quantize(total * fraction)
    ctx = AllocationContext(
        timeslice=window.start,
        billing_line=line,
        identities=resolution,
        split_amount=split,
        usage=usage,
        metrics_fetch_failed=metrics_fetch_failed,
        params=params or {},
        dimension_metadata={"env_id": line.env_id},
    )
    rows = list(allocator(ctx).rows) if fraction > 0 else []
    if metrics_fetch_failed:
        rows = [replace(row, allocation_detail=METRICS_FAILED_DETAIL) for row in rows]
    if split != total:
        rows.append(
            make_row(
                ctx,
                line.resource_id,
                total - split,
                CostType.SHARED,
                AllocationMethod.TERMINAL,
                INACTIVE_DETAIL,
            )
        )
    check_line_reconciles(line, rows)
    return rows


def failed_allocation_row(line: BillingLine, attempts: int, error: str) -> ChargebackRow:
    """The single row a line gets once its retries are exhausted: the full bill, to UNALLOCATED."""
    detail = f"Failed after {attempts} attempts: {error}"
    method = AllocationMethod.ALLOCATION_FAILED
    return line_row(
        line, UNALLOCATED, line.total_cost, CostType.SHARED, method, detail, {"env_id": line.env_id}
    )


@dataclass(frozen=True, slots=True)
class LinePlan:
    """Everything needed to allocate one line, gathered before any allocation runs."""

    line: BillingLine
    allocator: Allocator
    resolution: IdentityResolution
    window: Window
    resource: Resource | None = None
    usage: ResourceUsage | None = None
    metrics_fetch_failed: bool = False


def allocate_day(
    plans: Sequence[LinePlan],
    *,
    prior_attempts: Mapping[str, int],
    retry_limit: int,
    params: Mapping[str, Any] | None = None,
) -> DayAllocation:
    """Allocate every line of a day; a failing line never stops the others.

    A line that raises is tried again at once; every failure counts one attempt on top of the line's
    `prior_attempts` (those of earlier runs on the same bill). When its attempts reach `retry_limit` it
    becomes one ALLOCATION_FAILED row with the full cost. So one run settles every line of every day it
    covers, with no Dagster retry (DESIGN §3.11), and a line that already used its attempts on this bill
    gets one more try, not a fresh set.
    """
    outcome = DayAllocation()
    for plan in plans:
        lid = line_id(plan.line)
        prior = prior_attempts.get(lid, 0)
        rows, attempts, error = with_retries(
            lambda plan=plan: allocate_line(  # type: ignore[misc]
                plan.line,
                plan.allocator,
                plan.resolution,
                window=plan.window,
                resource=plan.resource,
                usage=plan.usage,
                metrics_fetch_failed=plan.metrics_fetch_failed,
                params=params,
            ),
            prior,
            retry_limit,
        )
        if rows is None:
            outcome.exhausted.append(LineFailure(plan.line, attempts, error))
            rows = [failed_allocation_row(plan.line, attempts, error)]
        outcome.rows.extend(rows)
        if attempts > prior:
            outcome.failed_attempts[lid] = attempts - prior
    return outcome


def with_retries(attempt: Callable[[], T], prior: int, retry_limit: int) -> tuple[T | None, int, str]:
    """Run `attempt` until it succeeds or the attempts (counting `prior` ones) reach `retry_limit`.

    Returns the result (None when every attempt failed), the attempt count now and the last error. A line
    that already used its attempts on this bill gets one more try, not a fresh set. Any exception counts:
    an allocator bug must go through the retry path and end as a recorded failure, never lose cost.
    """
    attempts, error = prior, ""
    for _ in range(max(1, retry_limit - prior)):
        try:
            return attempt(), attempts, ""
        except Exception as exc:
            attempts += 1
            error = f"{type(exc).__name__}: {exc}"
    return None, attempts, error


def with_tenant_period(resolution: IdentityResolution, tenant_period: IdentitySet) -> IdentityResolution:
    """The calculation, not the handler, decides the tenant-period scope."""
    return IdentityResolution(
        resource_active=resolution.resource_active,
        metrics_derived=resolution.metrics_derived,
        tenant_period=tenant_period,
        context=resolution.context,
    )
