"""A run that stops inside its chargeback_facts write transaction, for the crash-safety tests to SIGKILL.

Run as `python -m chargeback_assets_tests.crash_writer CONFIG DAY TENANT SIGNAL_FILE [all]`. It materializes
chargeback_facts of one partition (with `all`: every asset of the job, so billing_lines and the other
stages commit first) with the real job, storage and SQLite file; the only addition is a pause right after
`replace_chargeback_day` has deleted the day's facts and before it inserts the new ones and commits. At
that point it writes SIGNAL_FILE (JSON: facts deleted, facts the transaction still sees for the day) and
sleeps until killed.

Why a pause point rather than a slow allocator override: allocation finishes before the write transaction
begins, so a slow allocator is killed with nothing written yet. And the pause must come after the DELETE
but before the INSERT: a rerun writes rows identical to the old ones, so a kill after the INSERT could not
tell a rolled-back transaction from a committed one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg

import chargeback_assets.storage.chargeback as chargeback_storage
from chargeback_assets.config import load_config
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import Transaction
from chargeback_assets_tests.graph import Graph

PAUSE_S = 600.0


def pause_after_delete(signal_file: Path) -> None:
    real_delete_day = chargeback_storage.delete_day

    def delete_then_pause(
        tx: Transaction, table: str, ecosystem: str, tenant_id: str, day: date, **kwargs: str | None
    ) -> int:
        deleted = real_delete_day(tx, table, ecosystem, tenant_id, day, **kwargs)
        seen = len(chargeback_rows_for_day(tx, ecosystem, tenant_id, day))
        partial = signal_file.with_suffix(".partial")
        partial.write_text(json.dumps({"deleted": deleted, "seen_in_transaction": seen, "pid": os.getpid()}))
        partial.rename(signal_file)
        time.sleep(PAUSE_S)
        raise RuntimeError(f"crash_writer was not killed within {PAUSE_S:.0f} s")

    chargeback_storage.delete_day = delete_then_pause


def main(argv: list[str]) -> None:
    config, day, tenant, signal_file, *scope = argv
    pause_after_delete(Path(signal_file))
    db_path = load_config(config).storage.path
    graph = Graph(Path(config).parent, Path(config), db_path, {}, date.fromisoformat(day))
    selection = None if scope == ["all"] else [dg.AssetKey("chargeback_facts")]
    with dg.instance_for_test() as instance:
        graph.run(tenant, graph.newest, instance=instance, asset_selection=selection)


if __name__ == "__main__":
    main(sys.argv[1:])
