"""What each recent day of a tenant needs: nothing, or a recalculation, and why.

A day is recalculated when its bill at the source is not the stored one (never gathered, changed, or
reverted), when a later stage is older than the stored bill (a run stopped between two stages), or when the
last run that covered it failed (the source was down, say, and nothing else would bring it back). The
billing-change sensor asks this of every day in the recalculation window on each tick.

Most recalculations are a bill the provider revised. The inventory does not come from the bill, so a day
whose last gather was complete and whose runs did not fail needs only the bill and the stages built from it
(`DayNeed.bill_only`): gathering the whole inventory again would cost the revision more than the bill does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from chargeback_assets.stages.billing import current_fingerprints
from chargeback_assets.stages.checks import day_stages
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.pipeline import FAILED, last_runs


@dataclass(frozen=True, slots=True)
class DayNeed:
    day: date
    reasons: tuple[str, ...]
    """Why the day must be recalculated, most fundamental first; empty when it needs nothing."""
    trigger: str
    """The first reason as a run tag value: billing_changed, stages_stale or run_failed."""
    state: tuple[str, str | None]
    """What a request for the day answers: the source's bill and the last audited run that covered the day.
    Requesting once per state keeps a pending request from being repeated on every tick, while a new bill
    or a run that failed since calls for another."""
    bill_only: bool = False
    """Only billing_lines and what is built from it need recalculating: the bill was stored before (it
    changed or a later stage lags it), the day's inventory gather was complete, and its last run did not
    fail. Otherwise the whole day is rebuilt."""


def recalculation_needs(scope: TenantScope, days: Sequence[date]) -> list[DayNeed]:
    """The days the source can price now, with what each needs; a day it cannot price cannot be rebuilt."""
    current = current_fingerprints(scope, days)
    runs = last_runs(scope.db, scope.ecosystem, scope.tenant_id, current)
    needs = []
    for day, fingerprint in sorted(current.items()):
        stages = day_stages(scope, day)
        last = runs.get(day)
        reasons = []
        if stages.billing is None:
            reasons.append(("billing_changed", "never materialized"))
        elif stages.billing != fingerprint:
            reasons.append(("billing_changed", "billing changed at the source"))
        if stages.stale:
            reasons.append(("stages_stale", f"{', '.join(stages.stale)} older than the stored bill"))
        failed_run = last.run_id if last is not None and last.status == FAILED else None
        if failed_run is not None:
            reasons.append(("run_failed", f"last run {failed_run[:8]} failed"))
        needs.append(
            DayNeed(
                day=day,
                reasons=tuple(reason for _, reason in reasons),
                trigger=reasons[0][0] if reasons else "",
                state=(fingerprint, last.run_id if last else None),
                bill_only=stages.billing is not None and stages.inventory_complete and failed_run is None,
            )
        )
    return needs
