"""The tags command line, run as a real subprocess against a real config file and database."""

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.tags import list_tags
from chargeback_assets.tags import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "chargeback.yaml"
    tenant = {
        "ecosystem": "confluent_cloud",
        "tenant_id": "t-prod",
        "start_date": "2026-01-01",
        "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
    }
    path.write_text(
        yaml.safe_dump({"storage": {"path": str(tmp_path / "cb.db")}, "tenants": {"prod": tenant}})
    )
    return path


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def tags(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Runs the command line in this process (a subprocess per call would cost a second of imports)."""

    def run(config: Path, *args: str) -> Outcome:
        try:
            code = main(["--config", str(config), *args])
        except SystemExit as exit_:  # argparse refusing the command line
            code = int(exit_.code or 0)
        out = capsys.readouterr()
        return Outcome(code, out.out, out.err)

    return run


def test_runs_as_a_module(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chargeback_assets.tags", "--config", str(config), "list", "--tenant", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


ENTITY = ("--tenant", "prod", "--entity-type", "identity", "--entity-id", "sa-1")


def test_set_list_and_remove_a_tag(tags, config: Path, tmp_path: Path) -> None:
    done = tags(config, "set", *ENTITY, "--key", "team", "--value", "payments")
    assert (done.returncode, done.stdout) == (0, "identity sa-1: team=payments\n")
    assert tags(config, "set", *ENTITY, "--key", "team", "--value", "fraud").returncode == 0
    assert tags(config, "set", "--tenant", "prod", "--entity-type", "resource", "--entity-id", "lkc-1",
                "--key", "cost.center", "--value", "42").returncode == 0  # fmt: skip

    listed = tags(config, "list", "--tenant", "prod")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == [
        "identity\tsa-1\tteam=fraud\t(cli)",
        "resource\tlkc-1\tcost.center=42\t(cli)",
    ]
    with ChargebackDatabase.open(tmp_path / "cb.db") as db:
        (tag,) = list_tags(db, "confluent_cloud", "t-prod", "identity", "sa-1")
        assert (tag.tag_key, tag.tag_value, tag.created_by) == ("team", "fraud", "cli")

    assert tags(config, "remove", *ENTITY, "--key", "team").returncode == 0
    missing = tags(config, "remove", *ENTITY, "--key", "team")
    assert missing.returncode == 1
    assert "identity sa-1 has no tag 'team' in tenant prod" in missing.stderr
    assert tags(config, "list", "--tenant", "prod", "--entity-type", "identity").stdout == ""


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("Team", "x", "tag 'Team': tag keys must match"),
        ("9lives", "x", "tag '9lives': tag keys must match"),
        ("team", "a\tb", "values may not contain control characters"),
        ("team", "x" * 257, "at most 256 characters"),
        ("team", "  ", "tag 'team': must not be empty"),
    ],
)
def test_invalid_tags_are_refused_with_usage_exit_code(
    tags, config: Path, key: str, value: str, error: str
) -> None:
    refused = tags(config, "set", *ENTITY, "--key", key, "--value", value)
    assert refused.returncode == 2
    assert error in refused.stderr


def test_unknown_tenant_bad_config_and_missing_arguments(tags, config: Path, tmp_path: Path) -> None:
    unknown = tags(config, "list", "--tenant", "nope")
    assert (unknown.returncode, unknown.stderr) == (2, "error: unknown tenant 'nope'; known: prod\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tenants: {prod: {ecosystem: nowhere}}\n")
    bad_config = tags(broken, "list", "--tenant", "prod")
    assert bad_config.returncode == 1
    assert "tenants.prod" in bad_config.stderr
    assert tags(config, "set", *ENTITY, "--key", "team").returncode == 2  # --value missing
