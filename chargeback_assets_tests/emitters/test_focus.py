"""The FOCUS emitter on hand-made rows: what each column holds, credits, errors that write nothing, and the
PyPI focus-validator's verdict on its output (a good file passes, a broken one fails)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargeback_assets.emitters.base import EmitterError, LineTotals, PeriodFacts
from chargeback_assets.emitters.focus import COLUMNS, FocusEmitter
from chargeback_assets.engine.models import CostType
from chargeback_assets_tests.emitters.samples import emit_row, period_facts
from chargeback_assets_tests.focus_validator import failed_rules

DAY = date(2026, 3, 14)
CKU = ("env-1", "lkc-1", "KAFKA_NUM_CKU", "KAFKA")
PROMO = ("env-1", "lkc-1", "PROMO_CREDIT", "KAFKA")
STORAGE = ("env-1", "lkc-1", "KAFKA_STORAGE", "KAFKA")
LINES = {
    CKU: LineTotals(
        billed=Decimal("10.0000"), quantity=Decimal("4"), list_cost=Decimal("12.5000"), unit="CKU-hour"
    ),
    PROMO: LineTotals(
        billed=Decimal("-25.0000"), quantity=Decimal("-25"), list_cost=Decimal("-25"), unit="Credit"
    ),
    STORAGE: LineTotals(billed=Decimal("3.0000"), quantity=Decimal("300"), list_cost=None, unit="GB"),
}


def facts(**changes: object) -> PeriodFacts:
    return replace(
        period_facts(DAY, settled=False), lines=LINES, env_names={"env-1": "production"}, **changes
    )


def rows() -> list:
    return [
        emit_row(DAY, "sa-1", "6.0000", tags={"team": "payments", "cost.center": "42"}),
        emit_row(DAY, "sa-2", "4.0000", cost_type=CostType.SHARED, allocation_method="even_split"),
        emit_row(DAY, "sa-1", "-25.0000", product_type="PROMO_CREDIT", allocation_method="direct_owner"),
        emit_row(DAY, "u-3", "3.0000", product_type="KAFKA_STORAGE", identity_type="user"),
    ]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_one_row_per_chargeback_row_with_the_focus_columns_filled_from_the_bill(tmp_path: Path) -> None:
    written = FocusEmitter(tmp_path).emit("t1", DAY, rows(), facts())
    path = tmp_path / "focus_t1_2026-03-14.csv"
    assert written == [str(path)]
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    usage, shared, credit, storage = read(path)
    assert {key: usage[key] for key in COLUMNS if not key.startswith("x_")} == {
        "BilledCost": "6.0000",
        "BillingAccountId": "t1",
        "BillingAccountName": "t1",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": "2026-04-01T00:00:00Z",
        "BillingPeriodStart": "2026-03-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": "KAFKA KAFKA_NUM_CKU charged to sa-1 (usage_ratio)",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": "2026-03-15T00:00:00Z",
        "ChargePeriodStart": "2026-03-14T00:00:00Z",
        "ContractedCost": "6.0000",
        "EffectiveCost": "6.0000",
        "InvoiceId": "",
        "InvoiceIssuerName": "Confluent",
        "ListCost": "7.5000",  # 6/10 of the line's 12.50 before discounts
        "PricingQuantity": "2.4000000000",  # 6/10 of the line's 4 CKU-hours
        "PricingUnit": "CKU-Hours",
        "ProviderName": "Confluent",
        "PublisherName": "Confluent",
        "ResourceId": "lkc-1",
        "ResourceName": "orders cluster",
        "ResourceType": "unknown",
        "ServiceCategory": "Analytics",
        "ServiceName": "KAFKA",
        "ServiceSubcategory": "Streaming Analytics",
        "SubAccountId": "env-1",
        "SubAccountName": "production",
        "Tags": '{"cost.center":"42","team":"payments","chargeback/identity_id":"sa-1",'
        '"chargeback/identity_name":"SA-1","chargeback/identity_type":"service_account"}',
    }
    assert {key: usage[key] for key in COLUMNS if key.startswith("x_")} == {
        "x_TenantId": "t1",
        "x_Ecosystem": "confluent_cloud",
        "x_ProductCategory": "KAFKA",
        "x_ProductType": "KAFKA_NUM_CKU",
        "x_IdentityId": "sa-1",
        "x_IdentityName": "SA-1",
        "x_IdentityType": "service_account",
        "x_Team": "payments",
        "x_CostType": "usage",
        "x_AllocationMethod": "usage_ratio",
        "x_AllocationDetail": "",
        "x_ListCostSource": "bill",
        "x_Settled": "false",
        "x_Restated": "false",
    }
    assert (shared["ListCost"], shared["PricingQuantity"], shared["x_CostType"]) == (
        "5.0000",
        "1.6000000000",
        "shared",
    )
    # a promotional credit is a Credit, not negative usage: no quantity, every cost its billed amount
    assert {
        key: credit[key] for key in ("ChargeCategory", "ChargeFrequency", "PricingQuantity", "PricingUnit")
    } == {
        "ChargeCategory": "Credit",
        "ChargeFrequency": "One-Time",
        "PricingQuantity": "",
        "PricingUnit": "",
    }
    assert {credit[key] for key in ("BilledCost", "ListCost", "ContractedCost", "EffectiveCost")} == {
        "-25.0000"
    }
    # a bill without the amount before discounts: ListCost is what was billed, and says so
    assert (storage["ListCost"], storage["x_ListCostSource"], storage["PricingUnit"]) == (
        "3.0000",
        "billed_cost",
        "GB",
    )
    assert json.loads(storage["Tags"])["chargeback/identity_type"] == "user"


def test_a_restated_settled_day_and_a_month_are_what_the_stage_says(tmp_path: Path) -> None:
    month = date(2026, 3, 1)
    FocusEmitter(tmp_path).emit(
        "t1", month, rows()[:1], facts(end=date(2026, 4, 1), settled=True, restated=True)
    )
    (row,) = read(tmp_path / "focus_t1_2026-03-01.csv")
    assert (row["ChargePeriodStart"], row["ChargePeriodEnd"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    )
    assert (row["x_Settled"], row["x_Restated"]) == ("true", "true")


ODD_TEXT = st.sampled_from(["", "plain", "=1+1", 'say "hi"', "a,b", "line\nbreak", "cr\rx", " lead", "é"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(ODD_TEXT, ODD_TEXT, ODD_TEXT, ODD_TEXT), min_size=1, max_size=6), ODD_TEXT)
def test_cells_holding_commas_quotes_and_line_breaks_read_back_as_they_are_in_csv_module_bytes(
    tmp_path: Path, draws: list[tuple[str, str, str, str]], env_name: str
) -> None:
    emitter, shared = FocusEmitter(tmp_path), emit_row(DAY, "sa-0", "1.0000", resource_name="a,b")[1]
    drawn = []
    for i, (name, detail, team, resource_name) in enumerate(draws):
        row, labels = emit_row(
            DAY,
            f"sa-{name}",
            f"{i}.5000",
            identity_name=name or "x",
            allocation_detail=detail or None,
            resource_name=resource_name,
            tags={"team": team, 'k,"': team},
        )
        drawn.append((row, shared if i % 3 == 2 else labels))  # some rows share their labels
    (path,) = emitter.emit(f"t{env_name}", DAY, drawn, replace(facts(), env_names={"env-1": env_name}))
    written = Path(path).read_bytes()
    cells = read(Path(path))
    for (row, labels), cell in zip(drawn, cells, strict=True):
        assert (cell["BillingAccountId"], cell["x_IdentityId"], cell["x_IdentityName"]) == (
            f"t{env_name}",
            row.identity_id,
            labels.identity_name,
        )
        assert (cell["ResourceName"], cell["SubAccountName"], cell["x_AllocationDetail"]) == (
            labels.resource_name or "lkc-1",
            env_name,
            row.allocation_detail or "",
        )
        assert cell["ChargeDescription"] == f"KAFKA KAFKA_NUM_CKU charged to {row.identity_id} (usage_ratio)"
        tags = json.loads(cell["Tags"])
        assert (tags.get("team"), tags.get('k,"'), cell["x_Team"]) == (
            labels.tags.get("team"),
            labels.tags.get('k,"'),
            labels.tags.get("team", ""),
        )
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([cell[column] for column in COLUMNS] for cell in cells)
    assert written == expected.getvalue().encode("utf-8")


@pytest.mark.parametrize(
    ("changes", "row", "problem"),
    [
        ({"currency": "EUR,USD"}, emit_row(DAY, "sa-1", "1.0000"), "mixes currencies"),
        ({}, emit_row(DAY, "sa-1", "1.0000", product_type="KAFKA_BASE"), "no billing line"),
        ({}, emit_row(DAY, "sa-1", "1.0000", tags={"chargeback/team": "x"}), "reserves"),
    ],
)
def test_what_cannot_be_exported_fails_the_emission_and_keeps_the_earlier_file(
    tmp_path: Path, changes: dict, row: tuple, problem: str
) -> None:
    emitter = FocusEmitter(tmp_path)
    (path,) = emitter.emit("t1", DAY, rows()[:1], facts())
    before = Path(path).read_bytes()
    with pytest.raises(EmitterError, match=problem):
        emitter.emit("t1", DAY, [*rows()[:1], row], facts(**changes))
    assert Path(path).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["focus_t1_2026-03-14.csv"]  # no temporary file left
    assert emitter.retract("t1", DAY) == [path] and not tmp_path.joinpath(Path(path).name).exists()


@pytest.mark.slow
def test_the_focus_validator_passes_the_export_and_fails_a_broken_one(tmp_path: Path) -> None:
    (path,) = FocusEmitter(tmp_path / "out").emit("t1", DAY, rows(), facts())
    assert failed_rules(Path(path), tmp_path / "good.xml") == {}
    broken = read(Path(path))
    broken[0]["BilledCost"] = ""  # null
    broken[1]["BillingCurrency"] = "dollars"  # not an ISO 4217 code
    broken[2]["ChargePeriodStart"] = "yesterday"  # not a date and time
    with (tmp_path / "broken.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(broken)
    failed = failed_rules(tmp_path / "broken.csv", tmp_path / "broken.xml")
    assert {"BilledCost-C-003-M", "BillingCurrency-C-003-M", "ChargePeriodStart-C-002-M"} <= failed.keys(), (
        failed
    )
