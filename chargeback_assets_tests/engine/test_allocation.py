"""Allocation models: core-engine-spec.md §10 scenarios 4-9."""

from decimal import Decimal

import pytest

from chargeback_assets.engine.allocation import (
    AllocationError,
    Chain,
    Composition,
    DynamicComposition,
    EvenSplit,
    ParamRatios,
    Terminal,
    UsageRatio,
    chain,
    make_row,
    merged_active,
    standalone,
)
from chargeback_assets.engine.models import UNALLOCATED, AllocationContext, AllocationResult, CostType

from .builders import context


def usage(values: dict[str, str]):
    return lambda ctx: {k: Decimal(v) for k, v in values.items()}


def summary(rows) -> list[tuple]:
    return [
        (r.identity_id, str(r.amount), str(r.cost_type), r.allocation_method, r.allocation_detail)
        for r in rows
    ]


def test_usage_ratio_splits_by_usage_and_records_the_ratio() -> None:
    result = standalone(UsageRatio(usage({"u1": "60", "u2": "40"})))(context("10.00"))
    assert summary(result.rows) == [
        ("u1", "6.0000", "usage", "usage_ratio", "usage_ratio_allocation"),
        ("u2", "4.0000", "usage", "usage_ratio", "usage_ratio_allocation"),
    ]
    assert [r.metadata["ratio"] for r in result.rows] == [0.6, 0.4]


def test_usage_ratio_rows_do_not_depend_on_the_order_usage_arrives_in() -> None:
    """Prometheus series come in no stable order: a split of 1.0000 three ways leaves a remainder that must
    land on the same identity however the usage is ordered (the lowest id, as the split walks sorted ids)."""
    series = {"sa-b": "1", "sa-c": "1", "sa-a": "1"}
    orders = [dict(sorted(series.items())), dict(reversed(sorted(series.items()))), series]
    results = [summary(standalone(UsageRatio(usage(o)))(context("1.00")).rows) for o in orders]
    assert results[0] == results[1] == results[2]
    assert [(who, amount) for who, amount, *_ in results[0]] == [
        ("sa-a", "0.3334"),
        ("sa-b", "0.3333"),
        ("sa-c", "0.3333"),
    ]


@pytest.mark.parametrize(
    ("values", "fetch_failed", "detail"),
    [
        ({}, False, "no_usage_for_active_identities"),
        ({"u1": "0", "u2": "0"}, False, "no_usage_for_active_identities"),
        ({"u1": "5"}, True, "metrics_fetch_failed"),
    ],
    ids=["empty", "all-zero", "fetch-failed"],
)
def test_usage_ratio_alone_sends_undecidable_cost_to_unallocated(values, fetch_failed, detail) -> None:
    consulted = []

    def source(ctx: AllocationContext):
        consulted.append(True)
        return {k: Decimal(v) for k, v in values.items()}

    result = standalone(UsageRatio(source))(context("10.00", metrics_fetch_failed=fetch_failed))
    assert summary(result.rows) == [(UNALLOCATED, "10.0000", "shared", "usage_ratio", detail)]
    assert consulted == ([] if fetch_failed else [True]), "a failed fetch must not consult the usage source"


def test_chain_answers_with_the_first_tier_that_applies() -> None:
    nobody = EvenSplit(lambda ctx: [])
    allocator = chain(nobody, EvenSplit(lambda ctx: ["b", "a"]), Terminal("x"))
    rows = allocator.allocate(context("10.00")).rows
    assert summary(rows) == [
        ("a", "5.0000", "shared", "even_split", None),
        ("b", "5.0000", "shared", "even_split", None),
    ]
    assert {r.metadata["chain_tier"] for r in rows} == {1}


def test_chain_falls_through_to_its_terminal() -> None:
    rows = (
        chain(EvenSplit(merged_active), Terminal(lambda ctx: ctx.billing_line.resource_id))
        .allocate(context("7.50"))
        .rows
    )
    assert summary(rows) == [("lkc-abc", "7.50", "shared", "terminal", "no_identities_located")]
    assert rows[0].metadata["chain_tier"] == 1


@pytest.mark.parametrize("tiers", [(), (EvenSplit(merged_active),)], ids=["empty", "no-terminal"])
def test_chain_must_end_in_a_terminal(tiers) -> None:
    with pytest.raises(ValueError, match="tier"):
        Chain(tiers)


def test_composition_splits_by_ratio_and_tags_parts() -> None:
    allocator = Composition(((Decimal("0.70"), Terminal("sa-001")), (Decimal("0.30"), Terminal("sa-002"))))
    rows = allocator.allocate(context("10.00")).rows
    assert [(r.identity_id, r.amount) for r in rows] == [
        ("sa-001", Decimal("7.0000")),
        ("sa-002", Decimal("3.0000")),
    ]
    assert [(r.metadata["composition_index"], r.metadata["composition_ratio"]) for r in rows] == [
        (0, 0.7),
        (1, 0.3),
    ]


def test_composition_last_part_absorbs_rounding() -> None:
    parts = tuple((Decimal(r), Terminal(f"sa-{i}")) for i, r in enumerate(["0.333", "0.333", "0.334"]))
    rows = Composition(parts).allocate(context("10.00")).rows
    assert [str(r.amount) for r in rows] == ["3.3300", "3.3300", "3.3400"]


def test_composition_ratios_must_sum_to_one() -> None:
    with pytest.raises(AllocationError, match=r"1\.20"):
        Composition(((Decimal("0.60"), Terminal("a")), (Decimal("0.60"), Terminal("b"))))


def test_composition_part_that_declines_is_an_allocation_error() -> None:
    allocator = Composition(((Decimal("0.5"), EvenSplit(lambda ctx: [])), (Decimal("0.5"), Terminal("b"))))
    with pytest.raises(AllocationError, match="part 0"):
        allocator.allocate(context("10.00"))


def test_chain_whose_first_tier_is_a_composition() -> None:
    parts = ((Decimal("0.60"), Terminal("a")), (Decimal("0.40"), Terminal("b")))
    rows = chain(Composition(parts), Terminal("never")).allocate(context("10.00")).rows
    assert [
        (r.identity_id, str(r.amount), r.metadata["chain_tier"], r.metadata["composition_index"])
        for r in rows
    ] == [
        ("a", "6.0000", 0, 0),
        ("b", "4.0000", 0, 1),
    ]


def test_nested_stamps_keep_the_outermost_value_and_override_a_rows_own_metadata() -> None:
    """A chain inside a composition inside a chain: each row carries every level's stamp; where two levels
    stamp one key the outermost value is kept, and a stamp overrides the key a tier put on its own row."""

    class ClaimsATier:
        def allocate(self, ctx: AllocationContext) -> AllocationResult:
            row = make_row(ctx, "sa-2", ctx.split_amount, CostType.SHARED, "custom", None, {"chain_tier": 99})
            return AllocationResult((row,))

    inner = chain(UsageRatio(usage({"sa-1": "1"})), Terminal("never"))
    parts = ((Decimal("0.50"), inner), (Decimal("0.50"), ClaimsATier()))
    outer = chain(EvenSplit(lambda ctx: []), Composition(parts), Terminal("never"))
    rows = outer.allocate(context("4.00")).rows
    assert [(r.identity_id, str(r.amount), dict(r.metadata)) for r in rows] == [
        ("sa-1", "2.0000", {"ratio": 1.0, "chain_tier": 1, "composition_index": 0, "composition_ratio": 0.5}),
        ("sa-2", "2.0000", {"chain_tier": 1, "composition_index": 1, "composition_ratio": 0.5}),
    ]


def test_cku_style_dynamic_composition_usage_and_shared() -> None:
    """Scenario 9: 70/30 on $100, bytes 50/30/20 -> usage 35/21/14 + shared 10/10/10 = 45/31/24."""
    usage_chain = chain(UsageRatio(usage({"alice": "50", "bob": "30", "carol": "20"})), Terminal("lkc"))
    shared_chain = chain(EvenSplit(merged_active, CostType.USAGE), Terminal("lkc"))
    ratios = ParamRatios(
        (("kafka_cku_usage_ratio", Decimal("0.70")), ("kafka_cku_shared_ratio", Decimal("0.30")))
    )
    allocator = DynamicComposition(ratios, (usage_chain, shared_chain))
    rows = allocator.allocate(context("100", active=("alice", "bob", "carol"))).rows
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row.identity_id] = totals.get(row.identity_id, Decimal(0)) + row.amount
    assert totals == {"alice": Decimal("45"), "bob": Decimal("31"), "carol": Decimal("24")}
    assert [str(r.amount) for r in rows] == ["35.0000", "21.0000", "14.0000", "10.0000", "10.0000", "10.0000"]


def test_dynamic_composition_reads_ratios_from_params_at_allocation_time() -> None:
    ratios = ParamRatios((("u", Decimal("0.70")), ("s", Decimal("0.30"))))
    allocator = DynamicComposition(ratios, (Terminal("a"), Terminal("b")))
    rows = allocator.allocate(context("100", params={"u": "0.60", "s": "0.40"})).rows
    assert [str(r.amount) for r in rows] == ["60.0000", "40.0000"]
    with pytest.raises(AllocationError, match=r"1\.10"):
        allocator.allocate(context("100", params={"u": "0.80", "s": "0.30"}))


def test_even_split_alone_with_nobody_goes_to_unallocated() -> None:
    rows = standalone(EvenSplit(merged_active))(context("3.00")).rows
    assert summary(rows) == [(UNALLOCATED, "3.0000", "shared", "even_split", "no_identities_located")]
