"""The PyPI `focus-validator` run on a FOCUS file, from its own virtualenv (`make .focus-venv/.installed`).

It needs Python >= 3.12 while the project runs on 3.11, so it is a separate program here, not a library: the
tests run its command line and read the JUnit report it writes.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import pytest

from chargeback_assets.demo import REPO
from chargeback_assets.emitters.focus import FOCUS_VERSION

VENV = REPO / ".focus-venv"
CLAIMED_CRITERIA = (
    "SUB_ACCOUNT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
    "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
    "TAGGING_SUPPORTED",
)
"""The FOCUS applicability criteria the export claims (environments as sub accounts, resources with types,
tags); the validator checks the columns these make mandatory."""


def combine(files: Sequence[Path], into: Path) -> Path:
    """The files as one dataset (one header): FOCUS datasets span days and accounts."""
    with into.open("w", encoding="utf-8", newline="") as out:
        for index, file in enumerate(sorted(files)):
            lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
            out.writelines(lines if index == 0 else lines[1:])
    return into


def failed_rules(data_file: Path, report: Path) -> dict[str, str]:
    """Rule id -> message of every rule the validator failed or could not run on the file.

    The validator reports each branch of an either-or rule on its own: `InvoiceId-C-003-C` holds when
    `InvoiceId-C-004-C` (null when no invoice) or `InvoiceId-C-005-C` (not null when invoiced) does, and a
    null `InvoiceId` fails C-005 while meeting C-004. A branch whose either-or rule passed is therefore not a
    failure; which rules are either-or is read from the validator's own rule model, not listed here.
    """
    command = VENV / "bin" / "focus-validator"
    if not command.exists():
        pytest.fail(f"{command} is missing: `make .focus-venv/.installed` builds it (`make test` does)")
    (site_packages,) = VENV.glob("lib/python3.*/site-packages")
    subprocess.run(
        [
            command,
            "--data-file",
            data_file,
            "--validate-version",
            FOCUS_VERSION,
            "--block-download",
            "--applicability-criteria",
            ",".join(CLAIMED_CRITERIA),
            "--output-type",
            "unittest",
            "--output-destination",
            report,
        ],
        cwd=site_packages,  # it opens its bundled currency_codes.csv by a path relative to its package
        check=True,
        capture_output=True,
        timeout=300,
    )
    failed = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                failed[case.attrib["name"].split(" ::", 1)[0]] = element.attrib.get("message") or outcome
    either_or = _either_or_rules(site_packages)
    return {
        rule: message
        for rule, message in failed.items()
        if not any(rule in branches and parent not in failed for parent, branches in either_or.items())
    }


def _either_or_rules(site_packages: Path) -> dict[str, set[str]]:
    """Rule id -> the rules it is an OR of, from the validator's bundled model of the FOCUS version."""
    (model,) = (site_packages / "focus_validator" / "rules").glob(f"model-{FOCUS_VERSION}*.json")
    either_or: dict[str, set[str]] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                requirement = (
                    value.get("ValidationCriteria", {}).get("Requirement", {})
                    if isinstance(value, dict)
                    else {}
                )
                if isinstance(requirement, dict) and requirement.get("CheckFunction") == "OR":
                    either_or[key] = {
                        item["ModelRuleId"] for item in requirement.get("Items", []) if "ModelRuleId" in item
                    }
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(model.read_text(encoding="utf-8")))
    return either_or
