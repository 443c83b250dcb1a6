"""A tenant's totals over some days (and its topics' costs), read back from storage: what the demo and
operators print."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chargeback_assets import frames
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.checks import reconcile_topics_day
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.inventory import all_resources
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
    """The tenant's totals over `days` (consecutive); which of them are still provisional is judged as of
    `today`."""
    first, last = min(days), max(days)
    totals = frames.tenant_totals(data, first, last, today)
    provisional = totals[~totals["settled"]]
    resources = {
        r.resource_id: (r.display_name or "", f"resource {r.resource_type}")
        for r in all_resources(data.db, data.ecosystem, data.tenant_id)
    }
    ranked = frames.identity_totals(data, first, last, top)

    def named(identity_id: str, name: str, identity_type: str) -> tuple[str, str]:
        """An identity's name and type; else a resource's, named as one; else a sentinel."""
        return (name, identity_type) if identity_type else resources.get(identity_id, ("", "sentinel"))

    return TenantReport(
        tenant=data.tenant.name,
        days=len(totals),
        billed=sum(totals["billed"], ZERO),
        allocated=sum(totals["allocated"], ZERO),
        unallocated=sum(totals["unallocated"], ZERO),
        unattributed=sum(totals["unattributed"], ZERO),
        mismatched_lines=int(totals["mismatched_lines"].sum()),
        top=tuple(
            IdentityCost(r.identity_id, *named(r.identity_id, r.identity_name, r.identity_type), r.amount)
            for r in ranked.itertuples(index=False)
        ),
        currency=",".join(sorted({c for text in totals["currency"] for c in text.split(",")})),
        provisional_days=len(provisional),
        provisional_billed=sum(provisional["billed"], ZERO),
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
