import csv
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargeback_assets.emitters.base import EmitterError, Labels
from chargeback_assets.emitters.csv import (
    COLUMNS,
    TEAM_COLUMNS,
    CsvEmitter,
    CsvParams,
    check_filename_template,
    csv_cell,
    neutralize,
)
from chargeback_assets.engine.models import CostType
from chargeback_assets.validation import ConfigError, validate
from chargeback_assets_tests.emitters.samples import HOSTILE, emit_row, period_facts

DAY = date(2026, 3, 14)
PARAMS = "tenants.prod.emitters[0].params"


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_one_file_per_tenant_and_date_with_the_documented_columns_and_exact_amounts(tmp_path: Path) -> None:
    rows = [
        emit_row(DAY, "sa-1", "10.0001", tags={"team": "payments", "env": "prod"}),
        emit_row(DAY, "sa-2", "-0.5000", resource_id=None, cost_type=CostType.SHARED, allocation_method=None),
    ]
    written = CsvEmitter(tmp_path / "out").emit(
        "t1", DAY, rows, period_facts(DAY, currency="EUR", settled=False)
    )

    path = tmp_path / "out" / "t1_2026-03-14.csv"
    assert written[0] == str(path)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    first, second = read(path)
    assert first == {
        "date": "2026-03-14",
        "tenant_id": "t1",
        "ecosystem": "confluent_cloud",
        "env_id": "env-1",
        "resource_id": "lkc-1",
        "resource_name": "orders cluster",
        "product_category": "KAFKA",
        "product_type": "KAFKA_NUM_CKU",
        "identity_id": "sa-1",
        "identity_name": "SA-1",
        "identity_type": "service_account",
        "cost_type": "usage",
        "amount": "10.0001",
        "currency": "EUR",
        "allocation_method": "usage_ratio",
        "allocation_detail": "",
        "tags": '{"env":"prod","team":"payments"}',
        "settled": "false",
        "restated": "false",
    }
    assert (second["resource_id"], second["cost_type"], second["amount"], second["tags"]) == (
        "",
        "shared",
        "-0.5000",
        "{}",
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["t1_2026-03-14.csv", "t1_2026-03-14_teams.csv"]
    teams = read(tmp_path / "out" / "t1_2026-03-14_teams.csv")
    assert {(t["team"], t["currency"], t["settled"], t["restated"]) for t in teams} == {
        ("payments", "EUR", "false", "false"),
        ("UNTAGGED", "EUR", "false", "false"),
    }


def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralized(tmp_path: Path) -> None:
    hostile = [
        '=HYPERLINK("http://x")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tcmd",
        "\rcmd",
        ' =HYPERLINK("http://x")',  # spreadsheets skip leading blanks and control characters
        "\n\x00 -2+3",
        "\u00a0@SUM(A1)",
    ]
    rows = [
        emit_row(DAY, f"sa-{i}", "1.0000", identity_name=text, resource_name=text, tags={"team": text})
        for i, text in enumerate(hostile)
    ]
    path = Path(CsvEmitter(tmp_path).emit("t1", DAY, rows, period_facts(DAY))[0])
    cells = read(path)
    assert [c["identity_name"] for c in cells] == ["'" + text for text in hostile]
    assert [c["resource_name"] for c in cells] == ["'" + text for text in hostile]
    teams = read(path.with_name("t1_2026-03-14_teams.csv"))
    assert sorted(t["team"] for t in teams) == sorted("'" + text for text in hostile)
    # a negative amount is a number, not a formula: left alone
    negative = read(
        Path(CsvEmitter(tmp_path).emit("t1", DAY, [emit_row(DAY, "sa-1", "-3.2500")], period_facts(DAY))[0])
    )
    assert negative[0]["amount"] == "-3.2500"


def test_hostile_names_and_tags_read_back_exactly_with_the_csv_module_and_pandas(tmp_path: Path) -> None:
    tags = {"team": "pay;ments=1", "cost.center": 'a,b;c=d "e"\\'}
    rows = [
        emit_row(DAY, "sa-1", "1.2500", identity_name=HOSTILE, resource_name=HOSTILE, tags=tags),
        emit_row(DAY, "sa-2", "2.0000"),
    ]
    path = Path(CsvEmitter(tmp_path).emit("t1", DAY, rows, period_facts(DAY))[0])
    by_pandas = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    for cells in (read(path), by_pandas.to_dict("records")):
        assert [c["identity_id"] for c in cells] == ["sa-1", "sa-2"]
        assert cells[0]["identity_name"] == cells[0]["resource_name"] == "'" + HOSTILE
        assert [json.loads(c["tags"]) for c in cells] == [tags, {}]
        assert [Decimal(c["amount"]) for c in cells] == [Decimal("1.2500"), Decimal("2.0000")]


@pytest.mark.parametrize(
    "template",
    [
        "../{tenant_id}.csv",
        "/tmp/{tenant_id}.csv",
        "a/../../{date}.csv",
        "{tenant_id}_{user}.csv",
        "..\\x.csv",
    ],
)
def test_filename_templates_that_escape_output_dir_or_use_unknown_fields_are_rejected(template: str) -> None:
    assert check_filename_template(template) is not None
    with pytest.raises(ConfigError) as raised:
        validate(CsvParams, {"output_dir": "out", "filename_template": template}, at=PARAMS)
    assert raised.value.path == f"{PARAMS}.filename_template"


def test_a_tenant_id_that_would_escape_output_dir_is_refused_when_writing(tmp_path: Path) -> None:
    emitter = CsvEmitter(tmp_path / "out")
    with pytest.raises(EmitterError, match="outside the output directory"):
        emitter.emit("../../etc/t1", DAY, [emit_row(DAY, "sa-1", "1.0000")], period_facts(DAY))
    assert not (tmp_path / "etc").exists()


def test_emitter_params_are_validated_with_their_key_path() -> None:
    with pytest.raises(ConfigError) as missing:
        validate(CsvParams, {}, at=PARAMS)
    assert missing.value.path == f"{PARAMS}.output_dir"
    with pytest.raises(ConfigError) as unknown:
        validate(CsvParams, {"output_dir": "x", "dir": "y"}, at=PARAMS)
    assert unknown.value.path == PARAMS
    assert "'dir'" in str(unknown.value)


def test_monthly_template_fields_and_subdirectories(tmp_path: Path) -> None:
    emitter = CsvEmitter(tmp_path, "{month}/{tenant_id}-{date}.csv")
    written = emitter.emit(
        "t1", date(2026, 3, 1), [emit_row(date(2026, 3, 1), "sa-1", "2.0000")], period_facts(date(2026, 3, 1))
    )
    assert written == [str(tmp_path / "2026-03" / "t1-2026-03-01.csv")]


def test_team_rollup_sums_per_team_and_cost_type_and_goes_away_with_the_tags(tmp_path: Path) -> None:
    rows = [
        emit_row(DAY, "sa-1", "1.1111", tags={"team": "payments"}),
        emit_row(DAY, "sa-2", "2.2222", tags={"team": "payments"}),
        emit_row(DAY, "sa-2", "0.0001", tags={"team": "payments"}, cost_type=CostType.SHARED),
        emit_row(DAY, "sa-3", "5.0000"),
    ]
    emitter = CsvEmitter(tmp_path)
    emitter.emit("t1", DAY, rows, period_facts(DAY))
    teams_path = tmp_path / "t1_2026-03-14_teams.csv"
    assert teams_path.read_text().splitlines()[0] == ",".join(TEAM_COLUMNS)
    assert read(teams_path) == [
        {
            "date": "2026-03-14",
            "tenant_id": "t1",
            "team": "UNTAGGED",
            "cost_type": "usage",
            "amount": "5.0000",
            "currency": "USD",
            "settled": "true",
            "restated": "false",
        },
        {
            "date": "2026-03-14",
            "tenant_id": "t1",
            "team": "payments",
            "cost_type": "shared",
            "amount": "0.0001",
            "currency": "USD",
            "settled": "true",
            "restated": "false",
        },
        {
            "date": "2026-03-14",
            "tenant_id": "t1",
            "team": "payments",
            "cost_type": "usage",
            "amount": "3.3333",
            "currency": "USD",
            "settled": "true",
            "restated": "false",
        },
    ]
    emitter.emit("t1", DAY, [emit_row(DAY, "sa-3", "5.0000")], period_facts(DAY))
    assert not teams_path.exists()
    assert sum(Decimal(r["amount"]) for r in read(tmp_path / "t1_2026-03-14.csv")) == Decimal("5.0000")


def test_an_unwritable_output_dir_raises_an_emitter_error_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(EmitterError, match="cannot write"):
        CsvEmitter(blocker).emit("t1", DAY, [emit_row(DAY, "sa-1", "1.0000")], period_facts(DAY))
    writable = tmp_path / "ok"
    CsvEmitter(writable).emit("t1", DAY, [emit_row(DAY, "sa-1", "1.0000")], period_facts(DAY))
    assert [p.name for p in writable.iterdir()] == ["t1_2026-03-14.csv"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), min_size=2, max_size=6))
def test_a_cell_is_quoted_exactly_as_the_csv_module_quotes_it(cells: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    assert ",".join(csv_cell(cell) for cell in cells) + "\r\n" == out.getvalue()


ODD_TEXT = st.sampled_from(["", "plain", "=1+1", 'say "hi"', "a,b", "line\nbreak", "cr\rx", "-x", " lead"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(ODD_TEXT, ODD_TEXT, ODD_TEXT, st.sampled_from([None, "lkc-1", "=lkc"]), ODD_TEXT),
        min_size=1,
        max_size=8,
    )
)
def test_a_file_is_byte_for_byte_what_the_csv_module_writes_for_the_documented_cells(
    tmp_path: Path, draws: list[tuple[str, str, str, str | None, str]]
) -> None:
    labels = Labels(resource_name="shared name", identity_name="=shared", tags={"team": "a,b"})
    rows = []
    for i, (name, detail, team, resource, env) in enumerate(draws):
        row, own = emit_row(
            DAY,
            f"sa-{i}",
            f"{i}.0500",
            resource_id=resource,
            allocation_detail=detail or None,
            identity_name=name,
            tags={"team": team, "=k": team} if team else None,
        )
        rows.append((replace(row, env_id=env), own if i % 2 else labels))  # some rows share their labels
    emitter = CsvEmitter(tmp_path)
    for _ in range(2):  # a second period through the same emitter renders from its caches
        facts = period_facts(DAY, currency="=X,Y", restated=True)
        path = Path(emitter.emit("t1", DAY, rows, facts)[0])
        expected = io.StringIO()
        writer = csv.writer(expected, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for r, lab in rows:
            writer.writerow(
                [
                    "2026-03-14",
                    *(neutralize(text) for text in (r.tenant_id, r.ecosystem, r.env_id, r.resource_id or "")),
                    neutralize(lab.resource_name),
                    *(neutralize(text) for text in (r.product_category, r.product_type, r.identity_id)),
                    neutralize(lab.identity_name),
                    neutralize(lab.identity_type),
                    str(r.cost_type),
                    str(r.amount),
                    neutralize(facts.currency),
                    neutralize(r.allocation_method or ""),
                    neutralize(r.allocation_detail or ""),
                    json.dumps(dict(sorted(lab.tags.items())), ensure_ascii=False, separators=(",", ":")),
                    "true",
                    "true",
                ]
            )
        assert path.read_bytes() == expected.getvalue().encode("utf-8")


def test_retracting_a_period_removes_its_file_and_rollup_and_nothing_else(tmp_path: Path) -> None:
    emitter = CsvEmitter(tmp_path)
    other = date(2026, 3, 15)
    emitter.emit("t1", DAY, [emit_row(DAY, "sa-1", "1.0000", tags={"team": "payments"})], period_facts(DAY))
    emitter.emit("t1", other, [emit_row(other, "sa-1", "2.0000")], period_facts(other))
    assert emitter.retract("t1", DAY) == [
        str(tmp_path / "t1_2026-03-14.csv"),
        str(tmp_path / "t1_2026-03-14_teams.csv"),
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["t1_2026-03-15.csv"]
    assert emitter.retract("t1", DAY) == []  # nothing left to withdraw
