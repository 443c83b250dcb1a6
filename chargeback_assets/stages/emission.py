"""Emission: publish a tenant's stored chargeback for some days through each configured emitter of a type.
Every requested day is emitted again (a re-materialized partition replaces its output, and its record notes
the emission it replaced), so a published day always holds the database's current rows. Days older than the
emitter's `lookback_days` are skipped unless they were published before (a published day keeps following
the database). A calculated day without chargeback rows (its bill was emptied at the source) has whatever
was published for it withdrawn and is recorded as `withdrawn` (`skipped` when nothing was out there); a day
with nothing stored (never calculated, or removed by retention) is skipped and its outputs are left alone.
Days whose current chargeback did not reconcile with its bill, whose bill holds a malformed line, or that
were calculated from an incomplete inventory are recorded as blocked, with the reason, and never published
(per day: one bad day never holds back the others). Monthly aggregation emits each touched month once, from
all of its stored days, and records the outcome on every requested day of that month; a month with a
blocked day is blocked as a whole. Every output says what currency its period is billed in and whether it
is settled (`engine.models.is_settled`: past the tenant's `settle_days`; a month only once all its stored
days are); a settled day whose bill changed after it was published (the provider restated it anyway) is
marked restated in its outputs and its record, for good. Each (tenant, emitter, date) gets an
`emission_records` row with its status and attempt count, and for a published day the billing fingerprint
and settledness it was published with, and every place an output was published is remembered
(`published_outputs`, for purging a removed tenant); when any emission failed, the failures are recorded
first and then raised, so the partition fails; `pending_emissions` lists what is still owed (failed, or
never emitted since the day's calculation), which the emission-retry sensor materializes again (each try
counts another attempt).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from chargeback_assets.config import EmitterConfig, TenantConfig
from chargeback_assets.emitters.base import (
    EmitRow,
    Emitter,
    EmitterError,
    Labels,
    LineKey,
    LineTotals,
    Memo,
    PeriodFacts,
)
from chargeback_assets.engine.models import DEFAULT_CURRENCY, BillingLine, Window, day_start, is_settled
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.checks import inventory_gaps, malformed_lines, reconciles
from chargeback_assets.stages.scope import StageError, TenantData
from chargeback_assets.stages.tags import sync_config_tags
from chargeback_assets.storage.billing import billing_currencies, billing_for_day
from chargeback_assets.storage.chargeback import ChargebackFact, chargeback_dates, chargeback_facts_for_day
from chargeback_assets.storage.emissions import (
    EmissionRecord,
    EmissionStatus,
    PublishedBill,
    emission_records,
    record_emission,
    record_outputs,
)
from chargeback_assets.storage.inventory import all_resources, identities_overlapping
from chargeback_assets.storage.pipeline import PipelineState, calculated_days, get_state
from chargeback_assets.storage.tags import tags_for

PIPELINE = "chargeback"
NO_ROWS = "no chargeback rows"
NOT_RECONCILED = "not published: the chargeback does not reconcile with the bill (see chargeback_reconciles)"
MALFORMED_BILL = "not published until the row parses: malformed billing line (see billing_well_formed)"
INVENTORY_INCOMPLETE = "not published: calculated from an incomplete inventory (see inventory_complete)"
RESTATED = "restated after it settled: the bill changed since the settled day was published"
MAX_NAMED = 5
"""Malformed lines named in one day's block reason (the check lists them all)."""


@dataclass(slots=True)
class EmitterRun:
    """One emitter's outcome over the requested days of a tenant."""

    emitter: str
    emitted: list[date] = field(default_factory=list)
    skipped: dict[date, str] = field(default_factory=dict)
    failed: dict[date, str] = field(default_factory=dict)
    blocked: dict[date, str] = field(default_factory=dict)
    rows: int = 0
    day_rows: dict[date, int] = field(default_factory=dict)
    """Chargeback rows of each emitted day that went into its output."""
    day_outputs: dict[date, list[str]] = field(default_factory=dict)
    """Where each emitted day was published (files, Pushgateway URL)."""
    emptied: dict[date, str] = field(default_factory=dict)
    """Days that have no chargeback rows any more, whose earlier output was withdrawn (status `withdrawn`)."""
    replaced: dict[date, str] = field(default_factory=dict)
    """Emitted days whose new output replaced an earlier emission's (a restated day), with a note."""
    withdrawn: list[date] = field(default_factory=list)
    """Blocked or emptied days whose earlier output was removed (so the outputs must be published again)."""
    day_facts: dict[date, PeriodFacts] = field(default_factory=dict)
    """The currency and settledness each emitted day was published with (its period's)."""
    day_bills: dict[date, PublishedBill] = field(default_factory=dict)
    """What each emitted day's output was built from, for its emission record."""


class EmissionFailed(StageError):
    """Some emissions failed (already recorded); `runs` still describes everything that was done."""

    def __init__(self, message: str, runs: list[EmitterRun]) -> None:
        super().__init__(message)
        self.runs = runs


def emitters_of_type(tenant: TenantConfig, emitter_type: str) -> list[EmitterConfig]:
    """The tenant's emitters of one type, in config order (their params were validated at load)."""
    return [e for e in tenant.emitters if e.type == emitter_type]


@dataclass(frozen=True, slots=True)
class PendingEmission:
    """A day an emitter still owes: see `pending_emissions`."""

    day: date
    emitter: str
    attempts: int
    """Attempts recorded so far (0: never tried)."""
    reason: str
    calculation_run_id: str | None
    """The run that calculated the current chargeback: the emission is that run's own until it ends."""


def owed_since(data: TenantData, config: EmitterConfig, now: datetime) -> date:
    """The oldest day an emitter can still owe: the tenant's `start_date`, or `lookback_days` ago if later."""
    if config.lookback_days is None:
        return data.tenant.start_date
    return max(data.tenant.start_date, now.date() - timedelta(days=config.lookback_days))


def pending_emissions(data: TenantData, emitter_type: str, now: datetime) -> list[PendingEmission]:
    """What each emitter of the type still owes within its `lookback_days`, as the seed's EmitterRunner sees
    it: days whose emission failed, and calculated days whose current chargeback was never emitted (no record
    since the calculation; a day without rows is owed only when an earlier output must be withdrawn). A
    blocked, withdrawn or skipped day is owed again only once it is calculated again.
    """
    pending = []
    for config in emitters_of_type(data.tenant, emitter_type):
        since = owed_since(data, config, now)
        calculated = {
            s.tracking_date: s for s in calculated_days(data.db, data.ecosystem, data.tenant_id, since)
        }
        records = {
            r.date: r
            for r in emission_records(data.db, data.ecosystem, data.tenant_id, config.name, PIPELINE)
            if r.date >= since
        }
        with_rows = set(chargeback_dates(data.db, data.ecosystem, data.tenant_id, since))
        failed = {day for day, record in records.items() if record.status == "failed"}
        for day in sorted(calculated.keys() | failed):
            record, state = records.get(day), calculated.get(day)
            reason = _owed(record, state, day in with_rows)
            if reason is not None:
                pending.append(
                    PendingEmission(
                        day,
                        config.name,
                        record.attempt_count if record else 0,
                        reason,
                        state.calculation_run_id if state else None,
                    )
                )
    return pending


def _owed(record: EmissionRecord | None, state: PipelineState | None, has_rows: bool) -> str | None:
    """Why the day's emission is owed, or None."""
    if record is not None and record.status == "failed":
        return "failed"
    if state is None:
        return None
    if record is None:
        return "never emitted" if has_rows else None
    completed = state.calculation_completed_at
    if completed is not None and record.updated_at < completed and (has_rows or _published(record)):
        return "calculated again since its last emission"
    return None


def emit_days(
    data: TenantData, emitter_type: str, days: Sequence[date], *, now: datetime
) -> list[EmitterRun]:
    """Emit `days` through every emitter of `emitter_type` the tenant configures; [] when it has none."""
    configured = emitters_of_type(data.tenant, emitter_type)
    if not configured or not days:
        return []
    sync_config_tags(data, now)
    labels = RowLabels(data, _span(days, monthly=any(e.aggregation == "monthly" for e in configured)))
    verdicts = Verdicts(data)
    runs = [_emit(data, emitter, sorted(set(days)), labels, verdicts, now) for emitter in configured]
    failures = [
        str(data.fail(f"emitter {run.emitter}", [day], cause))
        for run in runs
        for day, cause in sorted(run.failed.items())
    ]
    if failures:
        raise EmissionFailed("\n".join(failures), runs)
    return runs


class Verdicts:
    """Why each day may not be published (nothing: it may), asked once per day however many emitters ask."""

    def __init__(self, data: TenantData) -> None:
        self._data = data
        self._known: dict[date, list[str]] = {}

    def block_reasons(self, days: Sequence[date]) -> list[str]:
        for day in days:
            if day not in self._known:
                self._known[day] = self._reasons(day)
        return [reason for day in days for reason in self._known[day]]

    def _reasons(self, day: date) -> list[str]:
        reasons = []
        if malformed := malformed_lines(self._data, day):
            more = f"; and {len(malformed) - MAX_NAMED} more" if len(malformed) > MAX_NAMED else ""
            reasons.append(f"{MALFORMED_BILL}: {'; '.join(malformed[:MAX_NAMED])}{more}")
        if not reconciles(self._data, day):
            reasons.append(NOT_RECONCILED)
        if gaps := inventory_gaps(self._data, day):
            reasons.append(f"{INVENTORY_INCOMPLETE}: {'; '.join(gaps)}")
        return reasons


def _emit(
    data: TenantData,
    config: EmitterConfig,
    days: list[date],
    labels: RowLabels,
    verdicts: Verdicts,
    now: datetime,
) -> EmitterRun:
    emitter = config.params.build()
    run = EmitterRun(config.name)
    earlier = {
        r.date: r for r in emission_records(data.db, data.ecosystem, data.tenant_id, config.name, PIPELINE)
    }
    if config.lookback_days is not None:
        oldest = now.date() - timedelta(days=config.lookback_days)
        run.skipped.update(  # a day published earlier is kept equal to the database, however old
            {
                d: f"older than lookback_days ({config.lookback_days})"
                for d in days
                if d < oldest and not _published(earlier.get(d))
            }
        )
    periods: dict[date, list[date]] = defaultdict(list)
    for day in days:
        if day not in run.skipped:
            periods[day.replace(day=1) if config.aggregation == "monthly" else day].append(day)
    monthly = config.aggregation == "monthly"
    for period, period_days in sorted(periods.items()):
        stored_days = month_days(data, period) if monthly else [period]
        if reasons := verdicts.block_reasons(sorted({*stored_days, *period_days})):
            reason = "; ".join(reasons)
            removed = _withdraw(data, emitter, run, period, period_days, reason)
            if removed is not None:
                run.blocked.update(dict.fromkeys(period_days, _note(reason, removed)))
            continue
        bills = {day: published_bill(data, day, earlier.get(day), now) for day in period_days}
        with collector_paused():
            facts, per_day = period_rows(data, stored_days)
            rows = labels.label(facts)
            if not rows:
                removed = (
                    _withdraw(data, emitter, run, period, period_days, NO_ROWS)
                    if _calculated(data, period_days)
                    else []
                )
                if removed:
                    run.emptied.update(dict.fromkeys(period_days, _note(NO_ROWS, removed)))
                elif removed is not None:
                    run.skipped.update(dict.fromkeys(period_days, NO_ROWS))
                continue
            period_facts = PeriodFacts(
                end=_span([period], monthly=monthly).end.date(),
                currency=period_currency(data, stored_days),
                settled=all(is_settled(d, now.date(), data.tenant.settle_days) for d in stored_days),
                restated=any(bill.restated for bill in bills.values()),
                lines=line_totals(data, stored_days) if emitter.wants_lines else {},
                env_names=labels.env_names(facts) if emitter.wants_lines else {},
            )
            try:
                written = emitter.emit(data.tenant_id, period, rows, period_facts)
            except EmitterError as exc:
                run.failed.update(dict.fromkeys(period_days, str(exc)))
                continue
        for day in period_days:
            run.day_outputs[day] = list(written)
            run.day_rows[day] = per_day.get(day, 0)
            run.day_facts[day], run.day_bills[day] = period_facts, bills[day]
            if _published(earlier.get(day)):
                replaced = f"replaced the output emitted at {earlier[day].updated_at.isoformat()}"
                run.replaced[day] = (RESTATED + "; " if bills[day].restated else "") + replaced
        run.emitted += period_days
        run.rows += len(rows)
    if run.emitted or run.withdrawn:
        try:
            published = emitter.publish(data.tenant_id)
        except EmitterError as exc:
            run.failed.update(dict.fromkeys([*run.emitted, *run.withdrawn], f"publish: {exc}"))
            run.emitted = []
        else:
            for day in run.emitted:
                run.day_outputs[day] += published
    _record(data, run, now)
    return run


def published_bill(
    data: TenantData, day: date, earlier: EmissionRecord | None, now: datetime
) -> PublishedBill:
    """What the day's output is built from now, and whether that restates a settled day: a day whose output
    was published once it had settled, and whose bill has changed since (or that was restated before)."""
    fingerprint = get_state(data.db, data.ecosystem, data.tenant_id, day).calculation_fingerprint
    before = earlier.published if earlier is not None else None
    restated = before is not None and (
        before.restated or (before.settled and before.billing_fingerprint != fingerprint)
    )
    return PublishedBill(fingerprint, is_settled(day, now.date(), data.tenant.settle_days), restated)


def period_currency(data: TenantData, days: Sequence[date]) -> str:
    """The currency the days are billed in (several, comma-separated, should a bill ever mix them)."""
    found = {c for day in days for c in billing_currencies(data.db, data.ecosystem, data.tenant_id, day)}
    return ",".join(sorted(found)) or DEFAULT_CURRENCY


def line_totals(data: TenantData, days: Sequence[date]) -> dict[LineKey, LineTotals]:
    """The days' billing lines summed per line key (one line per key and day)."""
    sums: dict[LineKey, tuple[Decimal, Decimal, Decimal | None, str]] = {}
    for day in days:
        for line in billing_for_day(data.db, data.ecosystem, data.tenant_id, day):
            key = (line.env_id, line.resource_id, line.product_type, line.product_category)
            billed, quantity, listed, unit = sums.get(key, (ZERO, ZERO, ZERO, ""))
            line_list = list_cost(line)
            sums[key] = (
                billed + line.total_cost,
                quantity + line.quantity,
                None if listed is None or line_list is None else listed + line_list,
                unit or str(line.metadata.get("unit") or line.product_type),
            )
    return {key: LineTotals(*values) for key, values in sums.items()}


def list_cost(line: BillingLine) -> Decimal | None:
    """The line's cost before discounts, where it is known: the provider's `original_amount`, or the whole
    cost of a line a cost model priced (it applies list rates, no discounts); None otherwise."""
    original = line.metadata.get("original_amount")
    if original is not None:
        return Decimal(str(original))
    return None if line.provider_prorated else line.total_cost


def _published(record: EmissionRecord | None) -> bool:
    """Whether the record says the day's output is out there (so it must follow the database)."""
    return record is not None and record.status == "emitted"


def _withdraw(
    data: TenantData, emitter: Emitter, run: EmitterRun, period: date, period_days: list[date], reason: str
) -> list[str] | None:
    """Remove what an earlier emission published for the period: what was removed, or None when the removal
    failed (then recorded as failed, with `reason`)."""
    try:
        removed = emitter.retract(data.tenant_id, period)
    except EmitterError as exc:
        run.failed.update(dict.fromkeys(period_days, f"{reason}; {exc}"))
        return None
    if removed:
        run.withdrawn += period_days
    return removed


def _note(reason: str, removed: list[str]) -> str:
    return reason + (f"; earlier output withdrawn: {', '.join(removed)}" if removed else "")


def _calculated(data: TenantData, days: Sequence[date]) -> bool:
    """Whether any of the days was calculated: an empty day that was is empty at the source, while one that
    was not (never calculated, or removed by retention) says nothing about what was published for it."""
    return any(get_state(data.db, data.ecosystem, data.tenant_id, day).chargeback_calculated for day in days)


def _record(data: TenantData, run: EmitterRun, now: datetime) -> None:
    outcomes: dict[date, tuple[EmissionStatus, str | None]] = {
        **{day: ("skipped", reason) for day, reason in run.skipped.items()},
        **{day: ("blocked", reason) for day, reason in run.blocked.items()},
        **{day: ("withdrawn", reason) for day, reason in run.emptied.items()},
        **{day: ("failed", cause) for day, cause in run.failed.items()},
        **{day: ("emitted", run.replaced.get(day)) for day in run.emitted},
    }
    published = [location for locations in run.day_outputs.values() for location in locations]
    with data.db.transaction() as tx:
        for day, (status, note) in sorted(outcomes.items()):
            bill = run.day_bills.get(day) if status == "emitted" else None
            record_emission(
                tx, data.ecosystem, data.tenant_id, run.emitter, PIPELINE, day, status, now, note, bill
            )
        record_outputs(tx, data.ecosystem, data.tenant_id, run.emitter, published, now)


def month_days(data: TenantData, month: date) -> list[date]:
    """The stored days of the month that starts on `month`."""
    return [d for d in chargeback_dates(data.db, data.ecosystem, data.tenant_id) if d.replace(day=1) == month]


def period_rows(data: TenantData, days: Sequence[date]) -> tuple[list[ChargebackFact], dict[date, int]]:
    """One day's stored facts, or several days' facts summed per dimension; and each day's row count."""
    if len(days) == 1:
        facts = chargeback_facts_for_day(data.db, data.ecosystem, data.tenant_id, days[0])
        return facts, {days[0]: len(facts)}
    first: dict[tuple[object, ...], ChargebackFact] = {}
    totals: dict[tuple[object, ...], Decimal] = defaultdict(lambda: ZERO)
    per_day: dict[date, int] = {}
    for day in days:
        facts = chargeback_facts_for_day(data.db, data.ecosystem, data.tenant_id, day)
        per_day[day] = len(facts)
        for fact in facts:
            dimension = fact[:-1]
            first.setdefault(dimension, fact)
            totals[dimension] += fact.amount
    return [fact._replace(amount=totals[dimension]) for dimension, fact in first.items()], per_day


def _span(days: Sequence[date], *, monthly: bool) -> Window:
    first, last = min(days), max(days) + timedelta(days=1)
    if monthly:
        first = first.replace(day=1)
        last = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
    return Window(day_start(first), day_start(last))


class RowLabels:
    """Display names, identity types and tags for a tenant's rows, read once per emission.

    Tags of a row: its identity's, then its resource's (the resource wins on a shared key). Rows of one
    (identity, resource) pair share one `Labels`.
    """

    def __init__(self, data: TenantData, window: Window) -> None:
        self._resources = {
            r.resource_id: (r.display_name or "", r.resource_type)
            for r in all_resources(data.db, data.ecosystem, data.tenant_id)
        }
        self._identities = {
            i.identity_id: (i.display_name or "", i.identity_type)
            for i in identities_overlapping(data.db, data.ecosystem, data.tenant_id, window)
        }
        self._tags = tags_for(data.db, data.ecosystem, data.tenant_id)
        self._pairs: Memo[tuple[str, str], Labels] = Memo(self._pair_labels)

    def _pair_labels(self, pair: tuple[str, str]) -> Labels:
        identity_id, resource_id = pair
        identity_name, identity_type = self._identities.get(identity_id, ("", ""))
        resource_name, resource_type = self._resources.get(resource_id, ("", ""))
        return Labels(
            resource_name=resource_name,
            resource_type=resource_type,
            identity_name=identity_name,
            identity_type=identity_type,
            tags={
                **self._tags.get(("identity", identity_id), {}),
                **self._tags.get(("resource", resource_id), {}),
            },
        )

    def env_names(self, facts: list[ChargebackFact]) -> dict[str, str]:
        """The display name of each environment the facts are charged in (its id when it has none)."""
        return {env: self._resources.get(env, ("", ""))[0] or env for env in {f.env_id for f in facts} if env}

    def label(self, facts: list[ChargebackFact]) -> list[EmitRow]:
        pairs = self._pairs
        return [(fact, pairs[fact.identity_id, fact.resource_id or ""]) for fact in facts]
