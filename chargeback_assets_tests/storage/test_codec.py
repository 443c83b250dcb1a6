from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chargeback_assets.storage.codec import (
    decode_json,
    encode_json,
    money_text,
    parse_timestamp,
    timestamp_text,
)


def test_json_round_trips_typed_values_exactly():
    value = {
        "ratio": Decimal("0.7000"),
        "at": datetime(2024, 3, 10, 5, 6, 7, 890, tzinfo=UTC),
        "day": date(2024, 3, 10),
        "pair": (Decimal("1.5"), "x"),
        "nested": {"owners": [{"id": "sa-1", "bytes": Decimal("800")}], "f": 0.25, "none": None, "ok": True},
    }
    text = encode_json(value, "ctx")
    assert decode_json(text) == value
    assert isinstance(decode_json(text)["pair"], tuple)
    assert encode_json(decode_json(text), "ctx") == text


@pytest.mark.parametrize(
    "value",
    [
        {"big": 18446744073709551616, "small": -9223372036854775809, "ok": 18446744073709551615},
        {"digits": 123456789012345678901234567890, "id": "9" * 25},
        {"name": "lone \ud800 surrogate", "emoji": "\U0001f600", "accented": "caf\u00e9"},
        {"f": 0.1, "neg_zero": -0.0, "tiny": 5e-324, "huge": 1.7976931348623157e308, "n": None, "b": False},
    ],
)
def test_untagged_json_comes_back_exactly_as_stored(value):
    """Plain metadata is decoded by orjson; what it would change (integers beyond 64 bits become floats,
    lone surrogates are refused) must come back exactly, type included."""
    back = decode_json(encode_json(value, "ctx"))
    assert back == value
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in value.items()}
    assert repr(sorted(back.items())) == repr(sorted(value.items()))


def test_json_is_canonical_whatever_the_key_order():
    assert encode_json({"b": 1, "a": 2}, "m") == encode_json({"a": 2, "b": 1}, "m") == '{"a":2,"b":1}'


def test_json_refuses_what_it_cannot_restore_naming_the_path():
    with pytest.raises(ValueError, match=r"ctx\.owners: key '\$decimal' may not start with '\$'"):
        encode_json({"owners": {"$decimal": "1"}}, "ctx")
    with pytest.raises(TypeError, match=r"ctx\.owners: keys must be strings, got int 3"):
        encode_json({"owners": {3: "x"}}, "ctx")
    with pytest.raises(TypeError, match=r"ctx\.s\[0\]: cannot store a set"):
        encode_json({"s": [{1}]}, "ctx")


def test_money_refuses_floats_and_non_finite():
    assert money_text(Decimal("12.3400"), "cost") == "12.3400"
    assert money_text(Decimal("1E+2"), "cost") == "100"
    with pytest.raises(TypeError, match=r"cost must be a Decimal, got float 0\.1"):
        money_text(0.1, "cost")
    with pytest.raises(ValueError, match="cost must be a finite Decimal, got NaN"):
        money_text(Decimal("NaN"), "cost")


def test_timestamps_are_utc_fixed_width_and_ordered_like_time():
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 3, 10, 2, 0, tzinfo=plus_two)
    assert timestamp_text(local, "t") == "2024-03-10T00:00:00.000000Z"
    assert parse_timestamp("2024-03-10T00:00:00.000000Z") == local
    assert parse_timestamp("2024-03-10T00:00:00.000000Z").tzinfo == UTC
    earlier = timestamp_text(datetime(2024, 3, 9, 23, 59, 59, 999999, tzinfo=UTC), "t")
    assert earlier < timestamp_text(local, "t")
    with pytest.raises(ValueError, match="t must be timezone-aware UTC"):
        timestamp_text(datetime(2024, 3, 10), "t")
