"""The day summary a chargeback_facts partition shows."""

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chargeback_assets.stages.chargeback import ChargebackDay

amounts = st.dictionaries(
    st.sampled_from([f"sa-{i}" for i in range(12)]), st.decimals("0", "3", places=2), max_size=12
)


def test_top_identities_are_the_largest_amounts_ties_by_id() -> None:
    day = ChargebackDay(
        day=date(2026, 1, 1),
        by_identity={"sa-b": Decimal("2"), "sa-a": Decimal("2"), "sa-c": Decimal("5"), "sa-d": Decimal("1")},
    )
    assert day.top_identities(3) == [("sa-c", Decimal("5")), ("sa-a", Decimal("2")), ("sa-b", Decimal("2"))]


@given(amounts, st.integers(0, 14))
def test_top_identities_order_is_amount_descending_then_id(
    by_identity: dict[str, Decimal], count: int
) -> None:
    top = ChargebackDay(day=date(2026, 1, 1), by_identity=by_identity).top_identities(count)
    assert top == sorted(by_identity.items(), key=lambda item: (-item[1], item[0]))[:count]
