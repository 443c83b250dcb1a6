from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.confluent_cloud.billing import (
    CCloudCostSource,
    FetchedRows,
    billing_windows,
    row_hash,
    unresolved_resource_id,
)
from chargeback_assets.ecosystems.confluent_cloud.client import CCloudApiError
from chargeback_assets.engine.models import UTC
from chargeback_assets_tests.ecosystems.confluent_cloud.conftest import Reply, example, listing, paged

COSTS = "/billing/v1/costs"

CKU_ROW = {
    "start_date": "2024-01-15",
    "end_date": "2024-01-16",
    "resource": {"id": "lkc-abc123", "display_name": "my-cluster", "environment": {"id": "env-xyz"}},
    "product": "KAFKA",
    "line_type": "KAFKA_NUM_CKU",
    "quantity": 2.0,
    "price": 1.50,
    "amount": 3.00,
    "original_amount": 3.50,
}


def _tier(quantity, price, amount):
    return {
        "start_date": "2024-01-15",
        "end_date": "2024-01-16",
        "resource": {"id": "lsrc-test", "environment": {"id": "env-1"}},
        "product": "STREAM_GOVERNANCE",
        "line_type": "NUM_RULES",
        "quantity": quantity,
        "price": price,
        "amount": amount,
    }


@pytest.fixture
def gather(fake, make_client):
    def run(rows, start=date(2024, 1, 1), end=date(2024, 2, 1), days=31):
        fake.route(COSTS, listing(rows))
        return CCloudCostSource(make_client(), "org-123", days).gather(start, end)

    return run


def test_scenario_36_one_row(gather):
    [line] = gather([CKU_ROW])
    assert line.ecosystem == "confluent_cloud" and line.tenant_id == "org-123"
    assert line.timestamp == datetime(2024, 1, 15, tzinfo=UTC)
    assert (line.env_id, line.resource_id) == ("env-xyz", "lkc-abc123")
    assert (line.product_category, line.product_type) == ("KAFKA", "KAFKA_NUM_CKU")
    assert (line.quantity, line.unit_price, line.total_cost) == (
        Decimal("2.0"),
        Decimal("1.5"),
        Decimal("3.0000"),
    )
    assert str(line.total_cost) == "3.0000"
    assert (line.currency, line.granularity, line.provider_prorated) == ("USD", "daily", True)
    assert line.metadata == {"resource_name": "my-cluster", "original_amount": "3.5"}


def test_scenario_37_tiers_merge(gather):
    rows = [_tier(240, 0.023, 5.52), _tier(72, 0.0345, 2.484)]
    [line] = gather(rows)
    assert line.total_cost == Decimal("8.004") and str(line.total_cost) == "8.0040"
    assert line.quantity == Decimal("312") and line.unit_price == Decimal("0")
    assert line.metadata["tiers"] == [
        {"price": "0.023", "quantity": "240", "cost": "5.52"},
        {"price": "0.0345", "quantity": "72", "cost": "2.484"},
    ]
    assert "raw_amount" not in line.metadata
    assert gather(list(reversed(rows))) == [line]


def test_scenario_38_unresolved_malformed_credits_and_bad_numbers(gather):
    """Our rules differ from the reference's: a malformed row charges nothing (its raw amount is kept and
    its day is held back), and an amount that is not a number makes the row malformed instead of 0."""
    no_resource = {**CKU_ROW, "resource": {}, "line_type": "SUPPORT", "product": "SUPPORT_CLOUD_BUSINESS"}
    undated_a = {k: v for k, v in CKU_ROW.items() if k != "start_date"}
    undated_b = {**undated_a, "amount": 7.25}
    credit = {**CKU_ROW, "resource": {"id": "lkc-credit"}, "amount": -100}
    garbage = {**CKU_ROW, "resource": {"id": "lkc-nan"}, "amount": "not-a-number"}
    rows = [no_resource, undated_a, undated_b, CKU_ROW, credit, garbage]
    lines = gather(rows)
    by_id = {line.resource_id: line for line in lines}

    assert len(lines) == 6
    assert by_id[unresolved_resource_id(no_resource)].total_cost == Decimal("3.0000")
    assert by_id[unresolved_resource_id(no_resource)].env_id == ""
    for row, raw in ((undated_a, "3.0"), (undated_b, "7.25")):
        malformed = by_id[f"malformed_billing_{row_hash(row)}"]
        # Our rule (the reference used 1970-01-01, a day no partition covers): the window's first day.
        assert malformed.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
        assert malformed.total_cost == 0 and malformed.metadata["raw_amount"] == raw
        assert malformed.metadata["malformed"] is True and "start_date" in malformed.metadata["parse_error"]
        assert (malformed.product_category, malformed.product_type) == ("KAFKA", "KAFKA_NUM_CKU")
    assert by_id["lkc-abc123"].total_cost == Decimal("3.0000")
    assert by_id["lkc-credit"].total_cost == Decimal("-100.0000")
    assert "lkc-nan" not in by_id
    nan = by_id[f"malformed_billing_{row_hash(garbage)}"]
    assert (nan.total_cost, nan.metadata["raw_amount"]) == (0, '"not-a-number"')
    assert nan.metadata["parse_error"] == "amount is not a number"
    assert sum(line.total_cost for line in lines) == Decimal("3") * 2 - 100


SUPPORT_ROW = {
    "id": "dlz-support-1",
    "start_date": "2024-01-15",
    "end_date": "2024-01-16",
    "product": "SUPPORT_CLOUD_BUSINESS",
    "line_type": "SUPPORT",
    "unit": "Month",
    "quantity": 1.0,
    "price": 32.258,
    "original_amount": 32.258,
    "discount_amount": 0.0,
    "amount": 32.258,
}


def test_a_restated_row_without_a_resource_keeps_its_line(gather):
    """Everything the row charges may change; what it describes names the line."""
    restated = {**SUPPORT_ROW, "quantity": 2.0, "price": 40.0, "original_amount": 80.0}
    restated |= {"discount_amount": 8.0, "amount": 72.0}
    [before], [after] = gather([SUPPORT_ROW]), gather([restated])
    assert before.resource_id == after.resource_id == unresolved_resource_id(SUPPORT_ROW)
    assert before.resource_id.startswith("unresolved_billing_")
    assert (before.total_cost, after.total_cost) == (Decimal("32.2580"), Decimal("72.0000"))


@pytest.mark.parametrize(
    "change",
    [{"id": "dlz-support-2"}, {"description": "premium"}, {"end_date": "2024-01-17"}, {"unit": "Day"}],
)
def test_rows_without_a_resource_that_describe_different_things_are_different_lines(gather, change):
    # Two rows sharing an id with different contents are malformed, so only the id's own case keeps it.
    row = SUPPORT_ROW if "id" in change else {k: v for k, v in SUPPORT_ROW.items() if k != "id"}
    lines = gather([row, {**row, **change}])
    assert len({line.resource_id for line in lines}) == 2
    assert sum(line.total_cost for line in lines) == Decimal("64.5160")


def test_rows_without_a_resource_or_an_id_that_differ_only_in_what_they_charge_are_tiers(gather):
    """As rows naming a resource are: the amounts add up on one line, and each row stays as a tier."""
    first = {k: v for k, v in SUPPORT_ROW.items() if k != "id"}
    second = {**first, "quantity": 2.0, "amount": 64.516, "original_amount": 64.516}
    [line] = gather([first, second])
    assert line.total_cost == Decimal("96.7740")
    assert [tier["cost"] for tier in line.metadata["tiers"]] == ["32.258", "64.516"]


def test_ids_and_output_do_not_depend_on_row_order(gather):
    rows = [
        {**CKU_ROW, "resource": {}, "line_type": t, "amount": a}
        for t, a in (("SUPPORT", 1), ("AUDIT_LOG_READ", 2), ("PROMO_CREDIT", -3))
    ]
    rows += [{**CKU_ROW, "start_date": None, "amount": 4}, CKU_ROW, _tier(1, 1, 1), _tier(2, 2, 4)]
    first = gather(rows)
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert gather(shuffled) == first
    assert [line.key for line in first] == sorted(line.key for line in first)


def test_fetched_rows_digest_each_day_whatever_the_order_and_read_a_day_as_gather_does(fake, make_client):
    """A day's digest depends on its own rows alone, in any order; a changed amount changes it; a day with no
    rows has one too; and the lines of some days are the gather's lines of those days."""
    other_day = {**CKU_ROW, "start_date": "2024-01-16", "end_date": "2024-01-17"}
    rows = [CKU_ROW, _tier(1, 1, 1), _tier(2, 2, 4), other_day, {**CKU_ROW, "resource": {}, "amount": 7}]
    start, end = date(2024, 1, 14), date(2024, 1, 17)

    def fetched(rows: list) -> FetchedRows:
        fake.route(COSTS, listing(rows))
        return CCloudCostSource(make_client(), "org-123").fetch_rows(start, end)

    first = fetched(rows)
    assert first.digests is not None and sorted(first.digests) == [date(2024, 1, d) for d in (14, 15, 16)]
    assert fetched(rows[::-1]).digests == first.digests
    restated = fetched([*rows[:3], {**other_day, "amount": 3.01}, rows[4]]).digests
    assert restated is not None
    assert [day.day for day in restated if restated[day] != first.digests[day]] == [16]
    fake.route(COSTS, listing(rows))
    gathered = CCloudCostSource(make_client(), "org-123").gather(start, end)
    assert first.lines([date(2024, 1, 15)]) == [line for line in gathered if line.timestamp.day == 15]
    assert first.lines() == gathered


@pytest.mark.parametrize(
    "odd_row",
    [{**CKU_ROW, "start_date": None}, {**CKU_ROW, "start_date": "2024-02-20"}, "not an object"],
    ids=["undated", "stray", "not-an-object"],
)
def test_fetched_rows_that_do_not_split_by_day_have_no_digests(fake, make_client, odd_row):
    fake.route(COSTS, listing([CKU_ROW, odd_row]))
    rows = CCloudCostSource(make_client(), "org-123").fetch_rows(date(2024, 1, 14), date(2024, 1, 17))
    assert rows.digests is None
    assert len(rows.lines()) == 2
    with pytest.raises(ValueError, match="do not split by day"):
        rows.lines([date(2024, 1, 15)])


def test_malformed_shapes_are_kept(gather):
    bad_resource = {**CKU_ROW, "resource": "lkc-abc123"}
    bad_env = {**CKU_ROW, "resource": {"id": "lkc-1", "environment": ["env-1"]}}
    bad_date = {**CKU_ROW, "start_date": "15/01/2024", "line_type": None}
    not_object = ["a", "list", "row"]
    lines = gather([bad_resource, bad_env, bad_date, not_object])
    assert len(lines) == 4
    assert all(line.resource_id.startswith("malformed_billing_") for line in lines)
    assert all(line.metadata["malformed"] is True for line in lines)
    by_id = {line.resource_id: line for line in lines}
    assert (
        "resource is not an object"
        in by_id[f"malformed_billing_{row_hash(bad_resource)}"].metadata["parse_error"]
    )
    assert by_id[f"malformed_billing_{row_hash(bad_resource)}"].timestamp == datetime(2024, 1, 15, tzinfo=UTC)
    assert "environment" in by_id[f"malformed_billing_{row_hash(bad_env)}"].metadata["parse_error"]
    dated = by_id[f"malformed_billing_{row_hash(bad_date)}"]
    assert dated.product_type == "MALFORMED" and dated.product_category == "KAFKA"
    assert dated.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    listed = by_id[f"malformed_billing_{row_hash(not_object)}"]
    assert (listed.product_category, listed.total_cost) == ("MALFORMED", Decimal(0))


def test_amounts_are_quantized_half_up_with_raw_amount_kept(gather):
    rows = [
        {**CKU_ROW, "resource": {"id": "lkc-up"}, "amount": 1.00005},
        {**CKU_ROW, "resource": {"id": "lkc-down"}, "amount": 2.00004},
        {**CKU_ROW, "resource": {"id": "lkc-odd"}, "quantity": "NaN", "price": True},
    ]
    by_id = {line.resource_id: line for line in gather(rows)}
    assert str(by_id["lkc-up"].total_cost) == "1.0001" and by_id["lkc-up"].metadata["raw_amount"] == "1.00005"
    assert (
        str(by_id["lkc-down"].total_cost) == "2.0000"
        and by_id["lkc-down"].metadata["raw_amount"] == "2.00004"
    )
    odd = by_id["lkc-odd"]  # quantity and price charge nobody: unreadable ones are 0, the amount stands
    assert (odd.total_cost, odd.quantity, odd.unit_price) == (Decimal("3.0000"), 0, 0)
    assert not odd.metadata.get("malformed")


@pytest.mark.parametrize(
    ("amount", "raw_amount", "problem"),
    [
        ("12.5USD", '"12.5USD"', "amount is not a number"),
        (None, "null", "amount is not a number"),
        (..., None, "amount is missing"),
        (True, "true", "amount is not a number"),
        ({"value": 3}, '{"value": 3}', "amount is not a number"),
        ("NaN", '"NaN"', "amount is not a finite number"),
        (float("inf"), "Infinity", "amount is not a finite number"),
    ],
)
def test_an_unreadable_amount_is_malformed_kept_raw_and_charges_nothing(gather, amount, raw_amount, problem):
    """Unreadable amounts are never zero: the row is kept as a malformed line that charges nothing, with
    the amount as the API sent it and its id, and its neighbours are charged as usual."""
    bad = {**CKU_ROW, "id": "dlz-bad", "resource": {"id": "lkc-bad"}, "amount": amount}
    if amount is ...:
        del bad["amount"]
    lines = gather([{**CKU_ROW, "id": "dlz-good"}, bad])
    by_id = {line.resource_id: line for line in lines}
    assert by_id["lkc-abc123"].total_cost == Decimal("3.0000") and "lkc-bad" not in by_id
    malformed = by_id[f"malformed_billing_{row_hash(bad)}"]
    assert malformed.total_cost == 0
    assert malformed.timestamp == datetime(2024, 1, 15, tzinfo=UTC)
    assert malformed.metadata.get("raw_amount") == raw_amount
    assert malformed.metadata["malformed"] is True
    assert (malformed.metadata["parse_error"], malformed.metadata["row_id"]) == (problem, "dlz-bad")


def test_an_amount_too_large_for_money_is_passed_on_unrounded_not_raised(gather):
    """1e30 cannot be held to 0.0001 in 28 digits; the source hands it on as it is (the billing stage
    refuses it against max_line_amount) instead of failing every day with a bare InvalidOperation."""
    [line] = gather([{**CKU_ROW, "id": "dlz-huge", "amount": 1e30}])
    assert line.total_cost == Decimal("1e30") and line.metadata["row_id"] == "dlz-huge"


def test_a_row_repeated_with_the_same_id_is_charged_once_and_its_copies_counted(fake, make_client):
    """Pages that overlap, and two windows that both return a row: one line, `duplicate_rows` copies."""
    row, other = {**CKU_ROW, "id": "dlz-1"}, {**CKU_ROW, "id": "dlz-2", "resource": {"id": "lkc-2"}}
    fake.route(COSTS, paged([[row, other], [row], [row]], COSTS, keep=("start_date", "end_date")))
    lines = CCloudCostSource(make_client(), "org-123").gather(date(2024, 1, 15), date(2024, 1, 16))
    by_id = {line.resource_id: line for line in lines}
    assert by_id["lkc-abc123"].total_cost == Decimal("3.0000")
    assert by_id["lkc-abc123"].metadata["duplicate_rows"] == 2
    assert "duplicate_rows" not in by_id["lkc-2"].metadata

    fake.route(COSTS, listing([row]))  # every one-day window answers with the same row
    [line] = CCloudCostSource(make_client(), "org-123", days_per_query=1).gather(
        date(2024, 1, 14), date(2024, 1, 17)
    )
    assert (line.total_cost, line.metadata["duplicate_rows"]) == (Decimal("3.0000"), 2)


def test_a_repeated_row_is_read_as_the_api_sent_it_whatever_json_can_hold(fake, make_client):
    """Rows wait for their copies as JSON text: values orjson would write differently (NaN, which it writes
    as null; an integer beyond 64 bits; a float it formats as 1e-5) still come back exactly as decoded."""
    nan = {**CKU_ROW, "id": "dlz-nan", "resource": {"id": "lkc-nan"}, "amount": float("nan")}
    big = {**CKU_ROW, "id": "dlz-big", "resource": {"id": "lkc-big"}, "quantity": 2**70}
    tiny = {**CKU_ROW, "id": "dlz-tiny", "resource": {"id": "lkc-tiny"}, "amount": 1e-05, "description": None}
    text = {**CKU_ROW, "id": "dlz-text", "resource": {"id": "lkc-text", "display_name": "Zürich ☃"}}
    fake.route(COSTS, paged([[nan, big, tiny, text], [nan, big, tiny, text]], COSTS, keep=("start_date",)))
    lines = CCloudCostSource(make_client(), "org-123").gather(date(2024, 1, 15), date(2024, 1, 16))
    by_id = {line.resource_id: line for line in lines}
    assert all(line.metadata["duplicate_rows"] == 1 for line in lines), "each row charged once"
    malformed = by_id[f"malformed_billing_{row_hash(nan)}"]
    assert (malformed.metadata["raw_amount"], malformed.metadata["parse_error"]) == (
        "NaN",
        "amount is not a finite number",
    )
    assert by_id["lkc-big"].quantity == Decimal(2**70)
    assert (by_id["lkc-tiny"].total_cost, by_id["lkc-tiny"].metadata["raw_amount"]) == (0, "0.00001")
    assert by_id["lkc-text"].metadata["resource_name"] == "Zürich ☃"


def test_rows_sharing_an_id_with_different_contents_are_all_malformed(gather):
    first, second = {**CKU_ROW, "id": "dlz-1"}, {**CKU_ROW, "id": "dlz-1", "amount": 4.0}
    lines = gather([first, second, second])
    assert sorted(line.resource_id for line in lines) == sorted(
        f"malformed_billing_{row_hash(r)}" for r in (first, second)
    )
    assert all(line.total_cost == 0 for line in lines)
    assert {line.metadata["raw_amount"] for line in lines} == {"3.0", "4.0"}
    assert {line.metadata["parse_error"] for line in lines} == {
        "row id dlz-1 came back with 2 different contents"
    }
    copies = {line.metadata["raw_amount"]: line.metadata.get("duplicate_rows") for line in lines}
    assert copies == {"3.0": None, "4.0": 1}


def test_multi_day_row_sits_on_its_start_date_and_optional_fields_are_kept(gather):
    row = {
        **CKU_ROW,
        "end_date": "2024-01-18",
        "amount": 9.75,
        "discount_amount": 1.25,
        "network_access_type": "PRIVATE_LINK",
        "description": "KAFKA101",
        "unit": "CKU-hour",
    }
    [line] = gather([row])
    assert line.timestamp == datetime(2024, 1, 15, tzinfo=UTC) and line.total_cost == Decimal("9.75")
    assert line.metadata == {
        "resource_name": "my-cluster",
        "original_amount": "3.5",
        "discount_amount": "1.25",
        "network_access_type": "PRIVATE_LINK",
        "description": "KAFKA101",
        "unit": "CKU-hour",
    }


def test_windows_split_by_days_per_query(fake, make_client):
    assert billing_windows(date(2024, 1, 1), date(2024, 2, 1), 15) == [
        (date(2024, 1, 1), date(2024, 1, 16)),
        (date(2024, 1, 16), date(2024, 1, 31)),
        (date(2024, 1, 31), date(2024, 2, 1)),
    ]
    assert billing_windows(date(2024, 1, 2), date(2024, 1, 2), 15) == []
    fake.route(COSTS, listing([]))
    CCloudCostSource(make_client(), "org-123", 15).gather(date(2024, 1, 1), date(2024, 2, 1))
    asked = [(h.query["start_date"], h.query["end_date"], h.query["page_size"]) for h in fake.hits(COSTS)]
    assert asked == [
        ("2024-01-01", "2024-01-16", "2000"),
        ("2024-01-16", "2024-01-31", "2000"),
        ("2024-01-31", "2024-02-01", "2000"),
    ]
    with pytest.raises(ValueError, match="days_per_query"):
        CCloudCostSource(make_client(), "org-123", 0)


def test_authored_pages_are_read_completely(fake, make_client):
    page1 = example("authored/billing-costs.page1.example.json")["data"]
    last = example("authored/billing-costs.lastpage.example.json")["data"]
    fake.route(COSTS, paged([page1, last], COSTS, keep=("start_date", "end_date")))
    lines = CCloudCostSource(make_client(), "org-123").gather(date(2026, 7, 1), date(2026, 7, 2))
    hits = fake.hits(COSTS)
    assert len(hits) == 2 and hits[1].query["start_date"] == "2026-07-01"
    # The authored last page repeats page 1's last three rows, ids and all: one cost each, charged once.
    distinct = {r["id"]: r for r in page1 + last}
    assert len(distinct) == len(page1) and {r["id"] for r in last} <= {r["id"] for r in page1}
    expected = sum(Decimal(str(r["amount"])) for r in distinct.values())
    assert sum(line.total_cost for line in lines) == expected.quantize(Decimal("0.0001"))
    assert sum(line.metadata.get("duplicate_rows", 0) for line in lines) == len(last)
    assert all(line.timestamp == datetime(2026, 7, 1, tzinfo=UTC) for line in lines)
    assert not any(line.metadata.get("malformed") for line in lines)


def test_a_failing_window_fails_the_gather(fake, make_client):
    fake.route(COSTS, Reply(403, {"errors": [{"status": "403", "detail": "not a billing admin"}]}))
    with pytest.raises(CCloudApiError, match="403"):
        CCloudCostSource(make_client(), "org-123").gather(date(2024, 1, 1), date(2024, 1, 2))
