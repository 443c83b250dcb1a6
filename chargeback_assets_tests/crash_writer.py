"""A run that stops inside its chargeback_facts write transaction, for the crash-safety tests to SIGKILL.

Run as `python -m chargeback_assets_tests.crash_writer CONFIG DAY TENANT SIGNAL_FILE [all]`. It materializes
chargeback_facts of one partition (with `all`: every asset of the job, so billing_lines and the other
stages commit first) with the real job, storage and SQLite file; the only addition is a pause right after
`replace_chargeback_day` has written the day's facts and before the transaction commits. At that point it
writes SIGNAL_FILE (JSON: facts written, and the day's facts and their sum as the transaction sees them)
and sleeps until killed.

Why a pause point rather than a slow allocator override: allocation finishes before the write transaction
begins, so a slow allocator is killed with nothing written yet. The write changes only the facts that
differ from the stored ones, so a test makes them differ first (a revised bill, or tampered facts): a
rerun over unchanged inputs would change nothing, and a kill could not tell a rolled-back transaction
from a committed one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

import chargeback_assets.stages.chargeback as chargeback_stage
from chargeback_assets.config import load_config
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import Transaction
from chargeback_assets_tests.graph import Graph

PAUSE_S = 600.0


def pause_before_commit(signal_file: Path) -> None:
    real_replace = chargeback_stage.replace_chargeback_day

    def replace_then_pause(
        tx: Transaction, ecosystem: str, tenant_id: str, day: date, *args: Any, **kwargs: Any
    ) -> int:
        written = real_replace(tx, ecosystem, tenant_id, day, *args, **kwargs)
        seen = chargeback_rows_for_day(tx, ecosystem, tenant_id, day)
        report = {
            "written": written,
            "seen_in_transaction": len(seen),
            "allocated_in_transaction": str(sum((row.amount for row in seen), Decimal(0))),
            "pid": os.getpid(),
        }
        partial = signal_file.with_suffix(".partial")
        partial.write_text(json.dumps(report))
        partial.rename(signal_file)
        time.sleep(PAUSE_S)
        raise RuntimeError(f"crash_writer was not killed within {PAUSE_S:.0f} s")

    chargeback_stage.replace_chargeback_day = replace_then_pause


def main(argv: list[str]) -> None:
    config, day, tenant, signal_file, *scope = argv
    pause_before_commit(Path(signal_file))
    db_path = load_config(config).storage.path
    graph = Graph(Path(config).parent, Path(config), db_path, {}, date.fromisoformat(day))
    selection = None if scope == ["all"] else [dg.AssetKey("chargeback_facts")]
    with dg.instance_for_test() as instance:
        graph.run(tenant, graph.newest, instance=instance, asset_selection=selection)


if __name__ == "__main__":
    main(sys.argv[1:])
