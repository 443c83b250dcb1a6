"""A run SIGKILLed in the middle of its chargeback write leaves the previous partition intact (DESIGN.md
§3.4), and a rerun of the partition completes with the same rows. A run SIGKILLed after its bill committed
leaves a day whose chargeback is older than its bill: the stages_consistent check flags it and the
billing-change sensor requests it again."""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.constants import TRIGGER_TAG
from chargeback_assets.engine.models import ChargebackRow
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.dagster_processes import REPO_ROOT
from chargeback_assets_tests.graph import TENANT_SEEDS, Graph, SensorTicks, running_graph

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


@contextmanager
def paused_writer(graph: Graph, workdir: Path, *scope: str) -> Iterator[tuple[int, dict[str, int]]]:
    """A crash_writer paused inside its chargeback write: yields its pid and what it reported there, then
    SIGKILLs it and checks it died of that signal."""
    signal_file, log_path = workdir / "paused.json", workdir / "writer.log"
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
                *scope,
            ],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield writer.pid, wait_for_pause(writer, signal_file, log_path)
    finally:
        writer.send_signal(signal.SIGKILL)
        returncode = writer.wait(timeout=30)
    assert returncode == -signal.SIGKILL, log_path.read_text()[-4000:]


@pytest.mark.slow
def test_sigkill_before_the_commit_keeps_the_previous_rows_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    with running_graph(tmp_path, days=3) as graph, dg.instance_for_test() as instance:
        assert graph.run(TENANT, graph.newest, instance=instance).success
        calculated = stored_rows(graph)
        assert len(calculated) > 0
        with ChargebackDatabase.open(graph.db_path) as db, db.transaction() as tx:
            tx.conn.execute("UPDATE chargeback_facts SET amount = '1.0000' WHERE tenant_id = ?", (TENANT,))
        tampered = stored_rows(graph)
        assert tampered != calculated

        with paused_writer(graph, tmp_path) as (pid, paused):
            # The writer is inside its transaction and has rewritten every fact of the day ...
            assert paused == {
                "written": len(calculated),
                "seen_in_transaction": len(calculated),
                "allocated_in_transaction": str(sum((row.amount for row in calculated), Decimal(0))),
                "pid": pid,
            }
            # ... which other connections do not see while it is open.
            assert stored_rows(graph) == tampered

        assert stored_rows(graph) == tampered
        assert integrity(graph) == "ok"

        rerun = graph.run(TENANT, graph.newest, instance=instance)
        assert rerun.success
        assert stored_rows(graph) == calculated


def billed_and_allocated(graph: Graph) -> tuple[Decimal, Decimal]:
    with ChargebackDatabase.open(graph.db_path) as db:
        lines = billing_for_day(db, "confluent_cloud", TENANT, graph.newest)
        rows = chargeback_rows_for_day(db, "confluent_cloud", TENANT, graph.newest)
    return sum((line.total_cost for line in lines), Decimal(0)), sum((row.amount for row in rows), Decimal(0))


@pytest.mark.slow
def test_a_run_killed_after_billing_committed_leaves_a_stale_day_that_is_flagged_and_recalculated(
    tmp_path: Path,
) -> None:
    settings = {tenant: {"recalculation_days": 1} for tenant in TENANT_SEEDS}
    with (
        running_graph(tmp_path, days=3, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        for tenant in TENANT_SEEDS:
            assert graph.run(tenant, graph.newest, instance=instance).success
        _, allocated_before = billed_and_allocated(graph)
        graph.sandboxes[TENANT].revise_bill(graph.newest, "1.3")

        with paused_writer(graph, tmp_path, "all"):
            pass  # billing_lines, usage_metrics and identity_resolutions committed; the chargeback did not
        billed, allocated = billed_and_allocated(graph)
        assert allocated == allocated_before != billed, "the stored bill is new, the chargeback old"

        def stages_consistent() -> dg.AssetCheckEvaluation:
            name = "stages_consistent"
            return graph.check("chargeback_facts", name, TENANT, graph.newest, instance=instance)

        stale = stages_consistent()
        assert not stale.passed
        [problem] = stale.metadata["problems"].value.splitlines()
        assert problem.startswith(f"{graph.newest} chargeback_facts: built from bill ")

        ticks = SensorTicks(graph, instance)
        assert ticks.tick() == [f"{graph.newest}|{TENANT}"]
        assert ticks.requests[0].tags[TRIGGER_TAG] == "stages_stale"
        assert ticks.tick() == []

        assert graph.run(TENANT, graph.newest, instance=instance).success
        assert stages_consistent().passed
        assert billed_and_allocated(graph) == (billed, billed)
        assert ticks.tick() == []
