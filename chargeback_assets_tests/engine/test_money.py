"""Rounding scenarios 1-3 of core-engine-spec.md §10 and ccloud-plugin-spec.md §6 (1-3)."""

from decimal import Decimal

import pytest

from chargeback_assets.engine.money import (
    MoneyError,
    distribute_remainder,
    even_split,
    ratio_split,
    to_decimal,
)


def amounts(*values: str) -> list[Decimal]:
    return [Decimal(v) for v in values]


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [
        ("10.00", 3, amounts("3.3334", "3.3333", "3.3333")),
        ("0.05", 3, amounts("0.0166", "0.0167", "0.0167")),
        ("100", 7, amounts("14.2858", *["14.2857"] * 6)),
        ("3.00", 3, amounts("1.0000", "1.0000", "1.0000")),
        ("0.00009", 2, amounts("0.0000", "0.0001")),
        ("1.00005", 2, amounts("0.5000", "0.5001")),
        ("-9.00", 3, amounts("-3.0000", "-3.0000", "-3.0000")),
        ("-10.00", 3, amounts("-3.3334", "-3.3333", "-3.3333")),
        ("2", 3, amounts("0.6666", "0.6667", "0.6667")),
        ("1", 7, amounts(*["0.1428"] * 3, *["0.1429"] * 4)),
    ],
    ids=["10/3", "0.05/3", "100/7", "3/3", "0.00009/2", "1.00005/2", "-9/3", "-10/3", "2/3", "1/7"],
)
def test_even_split(total: str, count: int, expected: list[Decimal]) -> None:
    result = even_split(Decimal(total), count)
    assert result == expected
    assert [str(a) for a in result] == [str(e) for e in expected]


def test_even_split_of_one_quantum_over_many() -> None:
    result = even_split(Decimal("0.0001"), 999)
    assert result[0] == Decimal("0.0001")
    assert result[1:] == [Decimal("0.0000")] * 998


def test_even_split_over_nobody_is_empty() -> None:
    assert even_split(Decimal("5"), 0) == []


def test_remainder_that_is_not_a_quantum_multiple_does_not_converge() -> None:
    with pytest.raises(MoneyError, match="did not converge"):
        distribute_remainder(amounts("1.0000", "1.0000"), Decimal("2.00005"))


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        ("10.00", ["60", "40"], amounts("6.0000", "4.0000")),
        ("10.00", ["1", "1", "1"], amounts("3.3334", "3.3333", "3.3333")),
        ("100", ["2", "1"], amounts("66.6667", "33.3333")),
        ("1.00", ["500", "300", "200"], amounts("0.5000", "0.3000", "0.2000")),
        ("100.00", ["333", "333", "334"], amounts("33.3000", "33.3000", "33.4000")),
        ("1.00005", ["60", "40"], amounts("0.6001", "0.4000")),
        ("33.33", ["1", "6", "3"], amounts("3.3330", "19.9980", "9.9990")),
    ],
)
def test_ratio_split(total: str, weights: list[str], expected: list[Decimal]) -> None:
    assert ratio_split(Decimal(total), [Decimal(w) for w in weights]) == expected


def test_ratio_split_needs_weight() -> None:
    with pytest.raises(MoneyError, match="sum to zero"):
        ratio_split(Decimal("1"), [Decimal(0)])


@pytest.mark.parametrize(("raw", "expected"), [(0.1, "0.1"), ("2.50", "2.50"), (3, "3")])
def test_to_decimal_never_goes_through_binary_floats(raw: object, expected: str) -> None:
    assert str(to_decimal(raw)) == expected


@pytest.mark.parametrize("raw", ["abc", True, None])
def test_to_decimal_rejects_non_numbers(raw: object) -> None:
    with pytest.raises(MoneyError, match="not a number"):
        to_decimal(raw)
