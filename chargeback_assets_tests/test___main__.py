"""`python -m chargeback_assets validate` and `schema`, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from chargeback_assets.__main__ import main
from chargeback_assets.config import json_schema
from chargeback_assets.demo import demo_environment

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "chargeback.example.yaml"
SCHEMA = REPO / "chargeback.schema.json"
TENANT = (
    "tenants:\n  prod:\n    ecosystem: confluent_cloud\n    tenant_id: t1\n    start_date: 2026-01-01\n"
    "    plugin_settings: {ccloud_api: {key: k, secret: s}}\n"
)


def test_validate_prints_a_line_per_tenant_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCLOUD_API_KEY", "key")
    assert main(["validate", str(EXAMPLE)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "acme-prod: confluent_cloud",
        "onprem-kafka: self_managed_kafka",
    ]
    assert "from 2026-01-01, emitters csv (csv), prometheus (prometheus), " in lines[0]
    assert lines[0].endswith(" date partitions")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (TENANT.replace("t1", "[t1]"), "tenants.prod.tenant_id: expected a string, got list"),
        (
            TENANT.replace("2026-01-01", "1 Jan 2026"),
            "tenants.prod.start_date: expected an ISO date (YYYY-MM-DD)",
        ),
        (
            TENANT + "    retention_days: many\n",
            "tenants.prod.retention_days: expected an integer, got string",
        ),
        (
            TENANT + "    settle_days: true\n",
            "tenants.prod.settle_days: expected an integer, got boolean True",
        ),
        (TENANT + "    max_line_amount: 1e999\n", "tenants.prod.max_line_amount: expected a finite number"),
        (TENANT + "    tags: [a]\n", "tenants.prod.tags: expected a mapping, got list"),
        (TENANT + "    emitters: {type: csv}\n", "tenants.prod.emitters: expected a list, got mapping"),
        (
            TENANT + "    emitters: [{type: xml}]\n",
            "tenants.prod.emitters[0].type: must be one of csv|prometheus",
        ),
        (
            TENANT + "    emitters: [{type: csv, params: {output_dir: [o]}}]\n",
            "tenants.prod.emitters[0].params.output_dir: expected a string, got list",
        ),
        (TENANT + "  prod: {}\n", "invalid YAML at line 7, column 3: duplicate key 'prod'"),
        ("", "tenants: no tenants configured"),
    ],
)
def test_validate_prints_each_problem_naming_file_and_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(text)
    assert main(["validate", str(file)]) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith(f"{file}: {line}")


def test_validate_refuses_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "c.yaml"
    file.write_bytes(TENANT.encode("utf-16"))
    assert main(["validate", str(file)]) == 2
    assert capsys.readouterr().err == f"{file}: not UTF-8 text (byte 0 is 0xff)\n"


def test_the_console_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(TENANT + "    retention_days: 0\n    settle_days: x\n")
    result = subprocess.run(
        [sys.executable, "-m", "chargeback_assets", "validate", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{file}: tenants.prod.settle_days: expected an integer, got string 'x'",
        f"{file}: tenants.prod.retention_days: must be between 1 and 730, got 0",
    ]


def test_check_connectivity_reports_each_source_per_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with demo_environment(tmp_path, 2) as (config_path, _):
        assert main(["validate", str(config_path), "--check-connectivity"]) == 0
        lines = capsys.readouterr().out.splitlines()
        document = yaml.safe_load(config_path.read_text())
        tenants = list(document["tenants"])
        for name in tenants:
            assert f"{name}: billing: ok" in lines and f"{name}: inventory: ok" in lines
        wrong = tenants[0]
        document["tenants"][wrong]["plugin_settings"]["ccloud_api"]["secret"] = "not-the-secret"
        config_path.write_text(yaml.safe_dump(document))
        assert main(["validate", str(config_path), "--check-connectivity"]) == 1
        failed = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    assert failed and all(line.startswith(f"{wrong}: ") for line in failed)
    assert any("401" in line for line in failed)
    assert not any("not-the-secret" in line for line in failed)


# --- the published schema -----------------------------------------------------------------------------------


def test_the_committed_schema_is_the_one_the_models_give() -> None:
    """Regenerate with `python -m chargeback_assets schema > chargeback.schema.json`."""
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(json_schema()))


def test_the_example_starts_with_the_schema_comment_and_validates_against_it() -> None:
    text = EXAMPLE.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./chargeback.schema.json"
    document = yaml.safe_load(text.replace(": 2026-01-01", ': "2026-01-01"'))
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)


def test_the_schema_accepts_variables_where_a_value_is_not_text_and_refuses_unknown_keys() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    document = yaml.safe_load(TENANT.replace("2026-01-01", '"2026-01-01"'))
    document["features"] = {"max_parallel_tenants": "${PARALLEL:-4}"}
    document["tenants"]["prod"] |= {"retention_days": "${RETENTION}", "unallocated_warn_fraction": "${F}"}
    validator.validate(document)
    document["tenants"]["prod"]["retention_dayz"] = 3
    assert not validator.is_valid(document)
