"""What the asset checks verify, computed from storage: reconciliation, the shares of the bill charged to
UNALLOCATED and to no payer, the inventory a calculation used, data quality, and whether every stage of a
day reflects the same bill."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chargeback_assets.ecosystems.confluent_cloud.settings import TopicAttributionSettings
from chargeback_assets.engine.bill_quality import PARSE_ERROR, RAW_AMOUNT, ROW_ID
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import UNALLOCATED, currency_of
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import (
    billing_for_day,
    billing_strays_for_day,
    line_totals_for_day,
    malformed_billing_for_day,
)
from chargeback_assets.storage.chargeback import (
    day_totals,
    identity_amounts_for_day,
    unattributed_amounts_for_day,
)
from chargeback_assets.storage.pipeline import get_state, update_state
from chargeback_assets.storage.topics import topic_lines_for_day, topic_metric_failures, topic_rows_for_day
from chargeback_assets.storage.usage import usage_failures_for_day


@dataclass(frozen=True, slots=True)
class DayReconciliation:
    day: date
    billed: Decimal
    allocated: Decimal
    unallocated: Decimal
    mismatches: tuple[str, ...]
    currency: str
    lines: int = 0
    rows: int = 0

    @property
    def missing_rows(self) -> bool:
        """The day has billing but no chargeback at all (never calculated, or its rows were removed): even a
        bill of zero-cost lines must not pass as reconciled, or be published as an empty day."""
        return self.lines > 0 and self.rows == 0

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.missing_rows


def reconcile_day(data: TenantData, day: date) -> DayReconciliation:
    """Compare, line by line, the stored chargeback with the stored bill.

    Reads the facts as sums per line (`day_totals`) and the lines as key and cost: a large day has tens of
    thousands of facts, and the check reads every day of its run.
    """
    lines = line_totals_for_day(data.db, data.ecosystem, data.tenant_id, day)
    totals = day_totals(data.db, data.ecosystem, data.tenant_id, day)
    allocated = dict(totals.by_line)
    mismatches = []
    for line in lines:
        got = allocated.pop(line.key, ZERO)
        if got != line.total_cost:
            where = f"{day} {line.product_type} {line.resource_id or '<org>'}"
            mismatches.append(f"{where}: billed {line.total_cost}, rows sum {got}")
    mismatches += [
        f"{day} rows without a billing line: {key[3]} {key[2] or '<org>'} {got}"
        for key, got in sorted(allocated.items())
    ]
    return DayReconciliation(
        day=day,
        billed=sum((line.total_cost for line in lines), ZERO),
        allocated=totals.total,
        unallocated=totals.unallocated,
        mismatches=tuple(mismatches),
        currency=currency_of(lines),
        lines=len(lines),
        rows=totals.facts,
    )


@dataclass(frozen=True, slots=True)
class DayShare:
    """A part of a day's bill (UNALLOCATED's, or the unattributed) and the bill it is a part of."""

    billed: Decimal
    amount: Decimal

    @property
    def fraction(self) -> Decimal:
        return self.amount / self.billed if self.billed > 0 else ZERO


def unallocated_day(data: TenantData, day: date) -> DayShare:
    """What UNALLOCATED got of the day's bill: reads the bill and UNALLOCATED's facts only, since a large day
    has tens of thousands of facts and the reconciliation check has just read them all."""
    amounts = identity_amounts_for_day(data.db, data.ecosystem, data.tenant_id, day, UNALLOCATED)
    return _share(data, day, amounts)


def unattributed_day(data: TenantData, day: date) -> DayShare:
    """What went to no payer (see `PAYER_IDENTITY_TYPES`), UNALLOCATED's part included: like UNALLOCATED's
    share, read from the bill and those facts only."""
    return _share(data, day, unattributed_amounts_for_day(data.db, data.ecosystem, data.tenant_id, day))


def _share(data: TenantData, day: date, amounts: list[Decimal]) -> DayShare:
    lines = line_totals_for_day(data.db, data.ecosystem, data.tenant_id, day)
    return DayShare(sum((line.total_cost for line in lines), ZERO), sum(amounts, ZERO))


def check_reconciliation(data: TenantData, day: date) -> DayReconciliation:
    """Reconcile a day and remember the verdict for the calculation it judged, so the emitters can publish
    exactly the days whose current chargeback reconciled without reading every fact again."""
    state = get_state(data.db, data.ecosystem, data.tenant_id, day)
    result = reconcile_day(data, day)
    with data.db.transaction() as tx:
        update_state(
            tx,
            data.ecosystem,
            data.tenant_id,
            day,
            reconciled_calculation_id=state.calculation_id,
            reconciliation_passed=result.passed,
        )
    return result


def reconciles(data: TenantData, day: date) -> bool:
    """The verdict on the day's current chargeback: stored by the check when it ran, else computed now."""
    state = get_state(data.db, data.ecosystem, data.tenant_id, day)
    if state.reconciliation_current:
        return state.reconciliation_passed
    return check_reconciliation(data, day).passed


def inventory_gaps(data: TenantData, day: date) -> list[str]:
    """What failed in the inventory gather the day's current chargeback was calculated from.

    A missing endpoint moves money silently: without the API keys, usage and key owners fall through to the
    tenant-wide tiers; without the service accounts, their charges go to stand-ins. Such a day is not
    published until a calculation from a complete gather.
    """
    return list(get_state(data.db, data.ecosystem, data.tenant_id, day).calculation_inventory_errors)


def malformed_lines(data: TenantData, day: date) -> list[str]:
    """Each malformed line of the day, naming its source row, the amount it gave and why it was refused."""
    return [
        f"{day} row {line.metadata.get(ROW_ID, '<no id>')} ({line.product_type} {line.resource_id}), "
        f"raw amount {line.metadata.get(RAW_AMOUNT, '<missing>')}: {line.metadata.get(PARSE_ERROR)}"
        for line in malformed_billing_for_day(data.db, data.ecosystem, data.tenant_id, day)
    ]


def stray_lines(data: TenantData, day: date) -> list[str]:
    """Each line the source sent with the day for a day that was not asked for, which nobody was charged."""
    return [
        f"{day} stray row {line.metadata.get(ROW_ID, '<no id>')} ({line.product_type} {line.resource_id}) "
        f"dated {line.timestamp.date()}, amount {line.total_cost}: outside the days requested, not charged"
        for line in billing_strays_for_day(data.db, data.ecosystem, data.tenant_id, day)
    ]


def billing_problems(data: TenantData, day: date) -> list[str]:
    return malformed_lines(data, day) + stray_lines(data, day)


def metrics_failures(data: TenantData, day: date) -> list[str]:
    return [
        f"{day} {resource}: {error}"
        for resource, error in usage_failures_for_day(data.db, data.ecosystem, data.tenant_id, day).items()
    ]


@dataclass(frozen=True, slots=True)
class DayStages:
    """Which bill each stage of a day reflects: the stored bill's fingerprint and, per later stage, the
    fingerprint of the bill it was built from (None: never built since fingerprints were recorded)."""

    day: date
    billing: str | None
    built_from: Mapping[str, str | None]
    inventory_complete: bool = False
    """Whether the day's last inventory gather ran and every endpoint answered."""

    @property
    def stale(self) -> tuple[str, ...]:
        """The stages older than the stored bill; none while no bill was ever gathered for the day.

        Each table write is atomic, but a run that dies between two of them (or an operator who
        materializes billing_lines alone) leaves a day whose later stages still reflect the bill before.
        """
        if self.billing is None:
            return ()
        return tuple(stage for stage, built in self.built_from.items() if built != self.billing)


def day_stages(data: TenantData, day: date) -> DayStages:
    state = get_state(data.db, data.ecosystem, data.tenant_id, day)
    return DayStages(
        day,
        state.billing_fingerprint,
        {
            "usage_metrics": state.usage_fingerprint,
            "identity_resolutions": state.resolution_fingerprint,
            "chargeback_facts": state.calculation_fingerprint,
        },
        inventory_complete=state.resources_gathered and not state.inventory_errors,
    )


def stale_stages(data: TenantData, day: date) -> list[str]:
    stages = day_stages(data, day)
    return [
        f"{day} {stage}: built from bill {_short(stages.built_from[stage])}, "
        f"billing_lines holds bill {_short(stages.billing)}"
        for stage in stages.stale
    ]


def _short(fingerprint: str | None) -> str:
    return fingerprint[:12] if fingerprint else "(none recorded)"


def topic_overlay_settings(data: TenantData) -> TopicAttributionSettings | None:
    """The tenant's topic attribution settings when it enabled the overlay (only Confluent Cloud has one)."""
    overlay = getattr(data.tenant.plugin_settings, "topic_attribution", None)
    return overlay if isinstance(overlay, TopicAttributionSettings) and overlay.enabled else None


@dataclass(frozen=True, slots=True)
class TopicReconciliation:
    lines: int
    cluster_cost: Decimal
    attributed: Decimal
    mismatches: tuple[str, ...]
    currency: str

    @property
    def passed(self) -> bool:
        return not self.mismatches


def reconcile_topics_day(data: TenantData, day: date) -> TopicReconciliation:
    """Each cluster line's topic rows sum to the line's current bill, or to zero when it is recorded as
    disabled or skipped; with the overlay on, every cluster line of the bill has been attributed."""
    overlay = topic_overlay_settings(data)
    bill = {line_id(line): line for line in billing_for_day(data.db, data.ecosystem, data.tenant_id, day)}
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in topic_rows_for_day(data.db, data.ecosystem, data.tenant_id, day):
        sums[row.line_id] += row.amount
    recorded = topic_lines_for_day(data.db, data.ecosystem, data.tenant_id, day)
    mismatches = []
    for stored in recorded:
        where = f"{day} {stored.product_type} {stored.resource_id}"
        line = bill.get(stored.line_id)
        if line is None or line.total_cost != stored.total_cost:
            mismatches.append(f"{where}: attributed a bill of {stored.total_cost} that is no longer current")
            continue
        expected = ZERO if stored.status in ("disabled", "skipped") else stored.total_cost
        got = sums.pop(stored.line_id, ZERO)
        if got != expected:
            mismatches.append(f"{where} ({stored.status}): billed {stored.total_cost}, topic rows sum {got}")
    mismatches += [f"{day} topic rows of no recorded line {lid}: {got}" for lid, got in sums.items()]
    seen = {stored.line_id for stored in recorded}
    if overlay is not None:
        mismatches += [
            f"{day} {line.product_type} {line.resource_id}: not attributed to topics"
            for lid, line in bill.items()
            if overlay.mapping(line.product_type) is not None and lid not in seen
        ]
    attributed = [stored for stored in recorded if stored.status not in ("disabled", "skipped")]
    return TopicReconciliation(
        lines=len(recorded),
        cluster_cost=sum((stored.total_cost for stored in recorded), ZERO),
        attributed=sum((stored.total_cost for stored in attributed), ZERO),
        mismatches=tuple(mismatches),
        currency=currency_of(line for lid, line in bill.items() if lid in seen),
    )


def topic_metrics_failures(data: TenantData, day: date) -> list[str]:
    return [
        f"{day} {cluster}: {error}"
        for cluster, error in topic_metric_failures(data.db, data.ecosystem, data.tenant_id, day).items()
    ]
