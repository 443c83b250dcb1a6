"""The rule every billing line passes before it is stored: an amount that is not money is malformed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chargeback_assets.engine.bill_quality import is_malformed, malformed, screen_amount
from chargeback_assets.engine.models import BillingLine
from chargeback_assets.engine.money import quantize_line_total

LIMIT = Decimal("10000000")


def line(total: str, **metadata: object) -> BillingLine:
    return BillingLine(
        "confluent_cloud",
        "t1",
        datetime(2026, 3, 16, tzinfo=UTC),
        "lkc-1",
        "KAFKA",
        "KAFKA_NUM_CKUS",
        Decimal(1),
        Decimal(total),
        Decimal(total),
        metadata=metadata,
    )


@pytest.mark.parametrize("total", ["10000000", "-10000000", "0", "0.0001", "-9999999.9999"])
def test_money_within_the_limit_either_way_passes_unchanged(total: str) -> None:
    assert screen_amount(line(total), LIMIT) == line(total)


@pytest.mark.parametrize(
    ("total", "raw", "problem"),
    [
        ("10000000.0001", "10000000.0001", "amount exceeds max_line_amount 10000000"),
        ("-10000000.0001", "-10000000.0001", "amount exceeds max_line_amount 10000000"),
        ("1E+30", "1E+30", "amount exceeds max_line_amount 10000000"),
        ("NaN", "NaN", "amount is not a finite number"),
        ("-Infinity", "-Infinity", "amount is not a finite number"),
    ],
)
def test_an_amount_that_is_not_money_makes_the_line_malformed_charging_nothing(
    total: str, raw: str, problem: str
) -> None:
    screened = screen_amount(line(total, row_id="dlz-1"), LIMIT)
    assert is_malformed(screened) and screened.total_cost == 0
    assert screened.metadata == {
        "row_id": "dlz-1",
        "malformed": True,
        "parse_error": problem,
        "raw_amount": raw,
    }
    assert (screened.resource_id, screened.product_type) == ("lkc-1", "KAFKA_NUM_CKUS")


def test_the_limit_is_the_tenants_and_the_raw_amount_the_sources() -> None:
    rounded = line("150.0000", raw_amount="150.00004")
    assert screen_amount(rounded, Decimal(200)) == rounded
    screened = screen_amount(rounded, Decimal(100))
    assert screened.metadata["raw_amount"] == "150.00004"
    assert screened.metadata["parse_error"] == "amount exceeds max_line_amount 100"


def test_a_line_already_malformed_keeps_the_sources_reason() -> None:
    unreadable = malformed(line("0"), "amount is not a number", '"12.5USD"')
    assert screen_amount(unreadable, Decimal(1)) == unreadable
    assert malformed(line("5", raw_amount="5.00001"), "amount is missing", None).metadata == {
        "malformed": True,
        "parse_error": "amount is missing",
    }


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("2.00005", "2.0001"), ("1E+30", "1E+30"), ("Infinity", "Infinity"), ("NaN", "NaN")],
)
def test_a_line_total_is_quantized_unless_it_cannot_be_money(amount: str, expected: str) -> None:
    assert str(quantize_line_total(Decimal(amount))) == expected
