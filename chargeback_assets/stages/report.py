"""A tenant's totals over some days (and its topics' costs), read back from storage: what the demo and
operators print."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chargeback_assets.engine.models import Window, day_start, is_settled
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.checks import reconcile_day, reconcile_topics_day
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.chargeback import chargeback_amounts_for_day, unattributed_amounts_for_day
from chargeback_assets.storage.inventory import all_resources, identities_overlapping
from chargeback_assets.storage.topics import topic_rows_for_day


@dataclass(frozen=True, slots=True)
class IdentityCost:
    identity_id: str
    display_name: str
    identity_type: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class TenantReport:
    tenant: str
    days: int
    billed: Decimal
    allocated: Decimal
    unallocated: Decimal
    unattributed: Decimal
    """Charged to no payer (see `PAYER_IDENTITY_TYPES`), UNALLOCATED included."""
    mismatched_lines: int
    top: tuple[IdentityCost, ...]
    currency: str
    """The currency the days are billed in (several, comma-separated, should a bill ever mix them)."""
    provisional_days: int
    """Days younger than the tenant's `settle_days`: their bill may still be revised."""
    provisional_billed: Decimal


def tenant_report(data: TenantData, days: Sequence[date], today: date, top: int = 10) -> TenantReport:
    """The tenant's totals over `days`; which of them are still provisional is judged as of `today`."""
    billed = allocated = unallocated = unattributed = provisional_billed = ZERO
    mismatched = provisional = 0
    currencies: set[str] = set()
    by_identity: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for day in days:
        check = reconcile_day(data, day)
        currencies.update(check.currency.split(","))
        if not is_settled(day, today, data.tenant.settle_days):
            provisional += 1
            provisional_billed += check.billed
        billed += check.billed
        allocated += check.allocated
        unallocated += check.unallocated
        unattributed += sum(unattributed_amounts_for_day(data.db, data.ecosystem, data.tenant_id, day), ZERO)
        mismatched += len(check.mismatches)
        for fact in chargeback_amounts_for_day(data.db, data.ecosystem, data.tenant_id, day):
            by_identity[fact.identity_id] += fact.amount
    window = Window(day_start(min(days)), day_start(max(days)))
    names = {
        i.identity_id: (i.display_name or "", i.identity_type)
        for i in identities_overlapping(data.db, data.ecosystem, data.tenant_id, window)
    }
    for resource in all_resources(data.db, data.ecosystem, data.tenant_id):
        names.setdefault(
            resource.resource_id, (resource.display_name or "", f"resource {resource.resource_type}")
        )
    ranked = sorted(by_identity.items(), key=lambda item: (-item[1], item[0]))[:top]
    return TenantReport(
        tenant=data.tenant.name,
        days=len(days),
        billed=billed,
        allocated=allocated,
        unallocated=unallocated,
        unattributed=unattributed,
        mismatched_lines=mismatched,
        top=tuple(
            IdentityCost(identity_id, *names.get(identity_id, ("", "sentinel")), amount)
            for identity_id, amount in ranked
        ),
        currency=",".join(sorted(currencies)),
        provisional_days=provisional,
        provisional_billed=provisional_billed,
    )


@dataclass(frozen=True, slots=True)
class TopicReport:
    cluster_cost: Decimal
    attributed: Decimal
    mismatched_lines: int
    top: tuple[tuple[str, str, Decimal], ...]
    """(cluster, topic, amount), most expensive first."""


def topic_report(data: TenantData, days: Sequence[date], top: int = 10) -> TopicReport:
    """Which topics cost the most over `days`, from the stored topic attribution."""
    cluster_cost = attributed = ZERO
    mismatched = 0
    by_topic: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for day in days:
        check = reconcile_topics_day(data, day)
        cluster_cost += check.cluster_cost
        attributed += check.attributed
        mismatched += len(check.mismatches)
        for row in topic_rows_for_day(data.db, data.ecosystem, data.tenant_id, day):
            by_topic[(row.resource_id, row.topic)] += row.amount
    ranked = sorted(by_topic.items(), key=lambda item: (-item[1], item[0]))[:top]
    return TopicReport(
        cluster_cost, attributed, mismatched, tuple((c, t, amount) for (c, t), amount in ranked)
    )
