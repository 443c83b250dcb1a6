from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from chargeback_assets.settings_reader import REQUIRED, Section, describe, join, reject_duplicates
from chargeback_assets.validation import ConfigError, Secret


def error_of(read: object) -> str:
    assert callable(read)
    with pytest.raises(ConfigError) as caught:
        read()
    return str(caught.value)


def test_join_builds_key_paths() -> None:
    assert join("", "tenants") == "tenants"
    assert join("tenants.a", "emitters") == "tenants.a.emitters"
    assert join("tenants.a.emitters", 2) == "tenants.a.emitters[2]"


def test_describe_hides_values_when_asked_and_shortens_long_ones() -> None:
    assert describe("abc") == "string 'abc'"
    assert describe("abc", reveal=False) == "string"
    assert describe({"a": 1}) == "mapping"
    assert describe("x" * 100) == "string '" + "x" * 56 + "..."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), ("3", 3), (" -4 ", -4), ("+5", 5)],
)
def test_integers_accept_integer_text(value: object, expected: int) -> None:
    assert Section({"n": value}, "p").integer("n") == expected


@pytest.mark.parametrize("value", [True, 3.0, "3.5", "1e3", "three"])
def test_integers_refuse_the_rest(value: object) -> None:
    assert error_of(lambda: Section({"n": value}, "p").integer("n")).startswith(
        "p.n: expected an integer, got"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.1, Decimal("0.1")), (7, Decimal(7)), ("0.0001", Decimal("0.0001")), (1e-05, Decimal("0.00001"))],
)
def test_decimals_are_exact(value: object, expected: Decimal) -> None:
    got = Section({"d": value}, "p").decimal("d")
    assert got == expected
    assert str(got) == str(expected)


@pytest.mark.parametrize("value", [False, "NaN", "Infinity", float("inf"), "1,5", [1]])
def test_decimals_refuse_non_finite_and_non_numbers(value: object) -> None:
    assert error_of(lambda: Section({"d": value}, "p").decimal("d")).startswith("p.d: expected a number, got")


def test_null_counts_as_absent() -> None:
    section = Section({"a": None}, "p")
    assert section.integer("a", 7) == 7
    assert error_of(lambda: Section({"a": None}, "p").string("a", REQUIRED)) == "p.a: required key is missing"


def test_iso_dates_refuse_timestamps() -> None:
    assert Section({"d": "2026-01-31"}, "p").iso_date("d") == date(2026, 1, 31)
    message = error_of(lambda: Section({"d": "2026-01-31T00:00:00"}, "p").iso_date("d"))
    assert message == "p.d: expected an ISO date (YYYY-MM-DD), got string '2026-01-31T00:00:00'"


def test_secret_errors_never_show_the_value() -> None:
    assert Section({"s": "pw"}, "p").secret("s") == Secret("pw")
    assert error_of(lambda: Section({"s": 123456}, "p").secret("s")) == "p.s: expected a string, got integer"
    assert error_of(lambda: Section({"s": "  "}, "p").secret("s")) == "p.s: must not be empty"


def test_finish_lists_unknown_and_allowed_keys() -> None:
    section = Section({"a": 1, "zz": 2, "yy": 3}, "p")
    section.integer("a")
    section.integer("b", 0)
    assert error_of(section.finish) == "p: unknown keys 'zz', 'yy'; allowed keys: a, b"


def test_context_manager_finishes_only_on_success() -> None:
    with (
        pytest.raises(ConfigError, match=r"p\.a: expected an integer"),
        Section({"a": "x", "junk": 1}, "p") as s,
    ):
        s.integer("a")
    with pytest.raises(ConfigError, match="unknown key 'junk'"), Section({"a": 1, "junk": 1}, "p") as s:
        s.integer("a")


def test_sections_and_items_carry_list_paths() -> None:
    section = Section({"list": [{"x": 1}, "oops"]}, "root")
    assert error_of(lambda: section.sections("list")) == "root.list[1]: expected a mapping, got string 'oops'"


def test_reject_duplicates_names_both_places() -> None:
    reject_duplicates([("a.id", "x"), ("b.id", "y")], "id")
    with pytest.raises(ConfigError) as caught:
        reject_duplicates([("a.id", "x"), ("b.id", "x")], "id")
    assert str(caught.value) == "b.id: duplicate id 'x', already used at a.id"
