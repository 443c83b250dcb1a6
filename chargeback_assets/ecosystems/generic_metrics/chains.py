"""Allocation chains of generic metrics cost types, and the identity and usage sources their tiers read.

The sources are shared with self_managed_kafka. A chain is picked by the cost type's
`allocation_strategy`; each ends with UNALLOCATED so cost nobody can be charged for stays visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from chargeback_assets.ecosystems.generic_metrics.settings import GenericCostType
from chargeback_assets.engine.allocation import (
    Chain,
    EvenSplit,
    Terminal,
    UsageRatio,
    UsageSource,
    chain,
    merged_active,
)
from chargeback_assets.engine.models import UNALLOCATED, AllocationContext, CostType


def metrics_derived(ctx: AllocationContext) -> Sequence[str]:
    return ctx.identities.metrics_derived.ids()


def resource_active(ctx: AllocationContext) -> Sequence[str]:
    return ctx.identities.resource_active.ids()


def usage_of(metric_key: str) -> UsageSource:
    """Usage per subject under one metric key of the line's usage (nothing when metrics are absent)."""

    def source(ctx: AllocationContext) -> Mapping[str, Decimal]:
        return (ctx.usage or {}).get(metric_key, {})

    return source


def allocation_key(cost_type_name: str) -> str:
    return f"alloc_{cost_type_name}"


def chain_for(cost_type: GenericCostType) -> Chain:
    if cost_type.allocation_strategy == "usage_ratio":
        return chain(
            UsageRatio(usage_of(allocation_key(cost_type.name))),
            EvenSplit(merged_active, CostType.SHARED, "no_metrics_located"),
            Terminal(UNALLOCATED, CostType.SHARED, "no_identities_located"),
        )
    return chain(
        EvenSplit(merged_active, CostType.SHARED, "even_split_allocation"),
        Terminal(UNALLOCATED, CostType.SHARED, "no_identities_located"),
    )
