"""Invariants over random bills: exact sums, no sign flips, determinism (hypothesis)."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from chargeback_assets.engine.allocation import (
    DynamicComposition,
    EvenSplit,
    ParamRatios,
    Terminal,
    UsageRatio,
    chain,
    merged_active,
    tenant_owners,
)
from chargeback_assets.engine.calculate import allocate_line, line_window
from chargeback_assets.engine.models import CostType, IdentityResolution
from chargeback_assets.engine.money import even_split, ratio_split

from .builders import identities, line

amounts = st.decimals(min_value=Decimal("-500"), max_value=Decimal("100000"), places=4, allow_nan=False)
positive_amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)
principal_ids = st.lists(st.from_regex(r"sa-[a-z0-9]{1,6}", fullmatch=True), max_size=30, unique=True)
usage_values = st.dictionaries(
    st.from_regex(r"sa-[a-z0-9]{1,6}", fullmatch=True),
    st.decimals(min_value=Decimal(0), max_value=Decimal(10**12), places=0),
    max_size=30,
)


def by_usage(ctx):
    return ctx.identities.context["usage"]


CKU = DynamicComposition(
    ParamRatios((("kafka_cku_usage_ratio", Decimal("0.70")), ("kafka_cku_shared_ratio", Decimal("0.30")))),
    (
        chain(UsageRatio(by_usage), EvenSplit(merged_active), EvenSplit(tenant_owners), Terminal("lkc-abc")),
        chain(EvenSplit(merged_active, CostType.USAGE), EvenSplit(tenant_owners), Terminal("lkc-abc")),
    ),
)


def allocate(total: Decimal, active: list[str], tenant: list[str], usage: dict[str, Decimal]):
    billed = line(str(total))
    resolution = IdentityResolution(
        resource_active=identities(*active), tenant_period=identities(*tenant), context={"usage": usage}
    )
    return allocate_line(billed, CKU.allocate, resolution, window=line_window(billed))


@settings(max_examples=300, deadline=None)
@given(amounts, principal_ids, principal_ids, usage_values)
def test_rows_sum_exactly_to_the_bill_and_never_flip_sign(total, active, tenant, usage) -> None:
    rows = allocate(total, active, tenant, usage)
    assert sum(r.amount for r in rows) == total
    if total > 0:
        assert all(r.amount >= 0 for r in rows)
    if total < 0:
        assert all(r.amount <= 0 for r in rows)


@settings(max_examples=150, deadline=None)
@given(amounts, principal_ids, principal_ids, usage_values)
def test_allocation_is_deterministic_whatever_the_identity_order(total, active, tenant, usage) -> None:
    first = allocate(total, active, tenant, usage)
    again = allocate(total, list(reversed(active)), list(reversed(tenant)), usage)
    assert first == again


@settings(max_examples=300, deadline=None)
@given(
    positive_amounts, st.lists(st.decimals(min_value=0, max_value=10**9, places=2), min_size=1, max_size=50)
)
def test_ratio_split_is_exact_and_non_negative(total, weights) -> None:
    if sum(weights) == 0:
        weights = [*weights, Decimal(1)]
    shares = ratio_split(total, weights)
    assert sum(shares) == total
    assert all(s >= 0 for s in shares)


@settings(max_examples=300, deadline=None)
@given(amounts, st.integers(min_value=1, max_value=2000))
def test_even_split_is_exact(total, count) -> None:
    shares = even_split(total, count)
    assert sum(shares) == total
    assert max(shares) - min(shares) <= Decimal("0.0001")
