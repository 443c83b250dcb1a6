"""Allocation models: the tiers of a fallback chain, and the chains and compositions built from them.

A model answers `allocate(ctx)` with an AllocationResult, or None to say "not me, try the next tier".
A Chain tries its tiers in order and stamps `chain_tier` on the rows of the tier that answered; its last
tier must be a Terminal so a chain always answers. A Composition splits the amount by fixed ratios and
runs one model per part (the CKU usage/shared split), stamping the part on its rows. Stamps travel in the
context (`AllocationContext.tier_metadata`) and are merged when a row is made, so no row is built twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from chargeback_assets.engine.models import (
    OWNER_IDENTITY_TYPES,
    UNALLOCATED,
    AllocationContext,
    AllocationMethod,
    AllocationResult,
    BillingLine,
    ChargebackRow,
    CostType,
)
from chargeback_assets.engine.money import QUANTUM, ZERO, even_split, quantize, ratio_split

Allocator = Callable[[AllocationContext], AllocationResult]
IdSource = Callable[[AllocationContext], Sequence[str]]
UsageSource = Callable[[AllocationContext], Mapping[str, Decimal]]
TargetSource = Callable[[AllocationContext], str]


class AllocationError(Exception):
    """A line could not be allocated; the calculation retries it, then charges it to UNALLOCATED."""


class AllocationModel(Protocol):
    def allocate(self, ctx: AllocationContext) -> AllocationResult | None: ...


def line_row(
    line: BillingLine,
    identity_id: str,
    amount: Decimal,
    cost_type: CostType,
    method: str | None,
    detail: str | None,
    metadata: Mapping[str, Any],
) -> ChargebackRow:
    """A chargeback row carrying the line's dimension fields (every row of a line is made here)."""
    return ChargebackRow(
        ecosystem=line.ecosystem,
        tenant_id=line.tenant_id,
        timestamp=line.timestamp,
        resource_id=line.resource_id,
        product_category=line.product_category,
        product_type=line.product_type,
        identity_id=identity_id,
        cost_type=cost_type,
        amount=amount,
        allocation_method=method,
        allocation_detail=detail,
        env_id=line.env_id,
        metadata=metadata,
    )


def make_row(
    ctx: AllocationContext,
    identity_id: str,
    amount: Decimal,
    cost_type: CostType,
    method: str | None,
    detail: str | None,
    metadata: Mapping[str, Any] | None = None,
) -> ChargebackRow:
    """A row of the line being allocated: the context's dimension metadata, overlaid by the row's own, then
    by the stamps of the chains and compositions around the tier."""
    merged = {**ctx.dimension_metadata, **(metadata or {}), **ctx.tier_metadata}
    return line_row(ctx.billing_line, identity_id, amount, cost_type, method, detail, merged)


def _stamped(ctx: AllocationContext, split_amount: Decimal | None = None, **stamps: Any) -> AllocationContext:
    """The context a nested tier allocates in: `stamps` under the enclosing ones (an outer stamp wins)."""
    return replace(
        ctx,
        split_amount=ctx.split_amount if split_amount is None else split_amount,
        tier_metadata={**stamps, **ctx.tier_metadata},
    )


# --- identity sources: who a tier may charge -------------------------------------------------------------


def merged_active(ctx: AllocationContext) -> Sequence[str]:
    return ctx.identities.merged_active.ids()


def tenant_owners(ctx: AllocationContext) -> Sequence[str]:
    """Tenant-period identities that can own cost (never api keys or system identities)."""
    return ctx.identities.tenant_period.ids_by_type(*OWNER_IDENTITY_TYPES)


def tenant_types(*identity_types: str) -> IdSource:
    def source(ctx: AllocationContext) -> Sequence[str]:
        return ctx.identities.tenant_period.ids_by_type(*identity_types)

    return source


def resource_of_line(ctx: AllocationContext) -> str:
    return ctx.billing_line.resource_id


# --- tiers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvenSplit:
    """Equal shares over the sorted ids of `source`; no ids means this tier does not apply."""

    source: IdSource
    cost_type: CostType = CostType.SHARED
    detail: str | None = None

    def allocate(self, ctx: AllocationContext) -> AllocationResult | None:
        ids = sorted(set(self.source(ctx)))
        if not ids:
            return None
        amounts = even_split(ctx.split_amount, len(ids))
        return AllocationResult(
            tuple(
                make_row(ctx, identity_id, amount, self.cost_type, AllocationMethod.EVEN_SPLIT, self.detail)
                for identity_id, amount in zip(ids, amounts, strict=True)
            )
        )


@dataclass(frozen=True, slots=True)
class UsageRatio:
    """Shares proportional to usage; declines when metrics failed, or nobody used anything.

    The split walks identities in sorted id order, so the rounding remainder always lands on the same ones:
    the order of the source (Prometheus series, a dict built from them) is not stable (DESIGN §3.3).
    """

    source: UsageSource
    detail: str = "usage_ratio_allocation"

    def allocate(self, ctx: AllocationContext) -> AllocationResult | None:
        if ctx.metrics_fetch_failed:
            return None
        usage = sorted((identity_id, value) for identity_id, value in self.source(ctx).items() if value > 0)
        if not usage:
            return None
        weights = [value for _, value in usage]
        total_weight = sum(weights, Decimal(0))
        amounts = ratio_split(ctx.split_amount, weights)
        return AllocationResult(
            tuple(
                make_row(
                    ctx,
                    identity_id,
                    amount,
                    CostType.USAGE,
                    AllocationMethod.USAGE_RATIO,
                    self.detail,
                    {"ratio": float(value / total_weight)},
                )
                for (identity_id, value), amount in zip(usage, amounts, strict=True)
            )
        )

    def decline_detail(self, ctx: AllocationContext) -> str:
        return "metrics_fetch_failed" if ctx.metrics_fetch_failed else "no_usage_for_active_identities"


@dataclass(frozen=True, slots=True)
class Terminal:
    """The whole amount to one target (an identity, the resource itself, UNALLOCATED): always answers."""

    target: str | TargetSource
    cost_type: CostType = CostType.SHARED
    detail: str | None = "no_identities_located"
    method: str = AllocationMethod.TERMINAL

    def allocate(self, ctx: AllocationContext) -> AllocationResult:
        target = self.target if isinstance(self.target, str) else self.target(ctx)
        return AllocationResult(
            (make_row(ctx, target, ctx.split_amount, self.cost_type, self.method, self.detail),)
        )


@dataclass(frozen=True, slots=True)
class Chain:
    """Tiers tried in order; the first that answers wins and its rows carry `chain_tier`."""

    tiers: tuple[AllocationModel, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("an allocation chain needs at least one tier")
        if not isinstance(self.tiers[-1], Terminal):
            raise ValueError("the last tier of an allocation chain must be a Terminal")

    def allocate(self, ctx: AllocationContext) -> AllocationResult:
        for index, tier in enumerate(self.tiers):
            result = tier.allocate(_stamped(ctx, chain_tier=index))
            if result is not None:
                return result
        raise AssertionError("unreachable: a Terminal always answers")  # pragma: no cover


def chain(*tiers: AllocationModel) -> Chain:
    return Chain(tuple(tiers))


def check_ratios_sum_to_one(ratios: Sequence[Decimal]) -> None:
    total = sum(ratios, Decimal(0))
    if abs(total - 1) > QUANTUM:
        raise AllocationError(f"composition ratios must sum to 1.0, got {total}")


@dataclass(frozen=True, slots=True)
class Composition:
    """Fixed-ratio parts, each allocated by its own model; the last part takes what rounding left."""

    parts: tuple[tuple[Decimal, AllocationModel], ...]

    def __post_init__(self) -> None:
        check_ratios_sum_to_one([ratio for ratio, _ in self.parts])

    def allocate(self, ctx: AllocationContext) -> AllocationResult:
        rows: list[ChargebackRow] = []
        allotted = ZERO
        for index, (ratio, model) in enumerate(self.parts):
            is_last = index == len(self.parts) - 1
            amount = ctx.split_amount - allotted if is_last else quantize(ctx.split_amount * ratio)
            allotted += amount
            part_ctx = _stamped(ctx, amount, composition_index=index, composition_ratio=float(ratio))
            result = model.allocate(part_ctx)
            if result is None:
                raise AllocationError(f"composition part {index} produced no allocation")
            rows.extend(result.rows)
        return AllocationResult(tuple(rows))


@dataclass(frozen=True, slots=True)
class DynamicComposition:
    """A Composition whose ratios are read per allocation (from `allocator_params`); bad sums fail then."""

    ratio_source: Callable[[AllocationContext], Sequence[Decimal]]
    models: tuple[AllocationModel, ...]

    def allocate(self, ctx: AllocationContext) -> AllocationResult:
        ratios = list(self.ratio_source(ctx))
        if len(ratios) != len(self.models):
            raise AllocationError(f"expected {len(self.models)} composition ratios, got {len(ratios)}")
        return Composition(tuple(zip(ratios, self.models, strict=True))).allocate(ctx)


def standalone(model: AllocationModel) -> Allocator:
    """Use one model as a whole allocator: when it declines, the amount goes to UNALLOCATED, with why."""

    def allocate(ctx: AllocationContext) -> AllocationResult:
        result = model.allocate(ctx)
        if result is not None:
            return result
        if isinstance(model, UsageRatio):
            method, detail = AllocationMethod.USAGE_RATIO, model.decline_detail(ctx)
        else:
            method, detail = AllocationMethod.EVEN_SPLIT, "no_identities_located"
        return AllocationResult(
            (make_row(ctx, UNALLOCATED, quantize(ctx.split_amount), CostType.SHARED, method, detail),)
        )

    return allocate


@dataclass(frozen=True, slots=True)
class ParamRatios:
    """Reads named ratios from `allocator_params`, with defaults, as exact Decimals."""

    names_and_defaults: tuple[tuple[str, Decimal], ...] = field(default=())

    def __call__(self, ctx: AllocationContext) -> Sequence[Decimal]:
        return [Decimal(str(ctx.params.get(name, default))) for name, default in self.names_and_defaults]
