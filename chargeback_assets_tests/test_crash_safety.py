"""A run SIGKILLed in the middle of its chargeback write leaves the previous partition intact (DESIGN.md
§3.4), and a rerun of the partition completes with the same rows."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.engine.models import ChargebackRow
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.dagster_processes import REPO_ROOT
from chargeback_assets_tests.graph import Graph, running_graph

TENANT = "acme-prod"
SIGNAL_TIMEOUT_S = 90.0


def stored_rows(graph: Graph) -> list[ChargebackRow]:
    with ChargebackDatabase.open(graph.db_path) as db:
        return chargeback_rows_for_day(db, "confluent_cloud", TENANT, graph.newest)


def integrity(graph: Graph) -> str:
    with ChargebackDatabase.open(graph.db_path) as db:
        return db.conn.execute("PRAGMA integrity_check").fetchone()[0]


def wait_for_pause(writer: subprocess.Popen[bytes], signal_file: Path, log_path: Path) -> dict[str, int]:
    deadline = time.monotonic() + SIGNAL_TIMEOUT_S
    while not signal_file.exists():
        if writer.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the writer never reached its pause point:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.05)
    return json.loads(signal_file.read_text())


@pytest.mark.slow
def test_sigkill_between_delete_and_commit_keeps_the_previous_rows_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    with running_graph(tmp_path, days=3) as graph, dg.instance_for_test() as instance:
        assert graph.run(TENANT, graph.newest, instance=instance).success
        before = stored_rows(graph)
        assert len(before) > 0

        signal_file, log_path = tmp_path / "paused.json", tmp_path / "writer.log"
        with log_path.open("wb") as log:
            writer = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chargeback_assets_tests.crash_writer",
                    str(graph.config_path),
                    graph.newest.isoformat(),
                    TENANT,
                    str(signal_file),
                ],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            paused = wait_for_pause(writer, signal_file, log_path)
            # The writer is inside its transaction and has deleted every fact of the day ...
            assert paused == {"deleted": len(before), "seen_in_transaction": 0, "pid": writer.pid}
            # ... which other connections do not see while it is open.
            assert stored_rows(graph) == before
        finally:
            writer.send_signal(signal.SIGKILL)
            returncode = writer.wait(timeout=30)
        assert returncode == -signal.SIGKILL, log_path.read_text()[-4000:]

        assert stored_rows(graph) == before
        assert integrity(graph) == "ok"

        rerun = graph.run(TENANT, graph.newest, instance=instance)
        assert rerun.success
        assert stored_rows(graph) == before
