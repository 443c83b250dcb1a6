"""A run launcher that notices a run whose worker process is gone.

Dagster's default launcher starts each run in a local process but cannot say whether that process is still
alive, so a worker killed outright (with its code server, as in a host crash) leaves its run STARTED for
ever, and the run queue keeps that tenant's next run QUEUED behind it. This launcher launches exactly as
the default one does and answers the run monitor's health check from the pid the worker itself reported
in its "Started process for run" event: a pid that no longer exists (or is a zombie) means the worker died,
and the monitor marks the run failed, which frees the tenant's place in the queue and its leases
(stages/lanes.py).

Pids are only meaningful on the machine that started them, which is the default launcher's premise: its
workers run beside the daemon. A run without such an event (launched in-process by the CLI) is reported as
running; its leases still expire when their heartbeat stops.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, EventLogEntry

# Health-check types are not exported by Dagster 1.13 (pinned); the launcher API that uses them is public.
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

STARTED_PROCESS = "Started process for run"


def process_is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by its parent) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class WorkerCheckingRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` plus a worker health check for `run_monitoring` (see the module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker process recorded for this run")
        if process_is_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker pid {pid} is gone")

    def _worker_pid(self, run: DagsterRun) -> int | None:
        engine_events = DagsterEventType.ENGINE_EVENT
        records = self._instance.get_records_for_run(run.run_id, of_type=engine_events).records
        return self.started_pid(record.event_log_entry for record in records)

    @staticmethod
    def started_pid(entries: Iterable[EventLogEntry]) -> int | None:
        """The pid in a run's "Started process for run" engine event, if it has one."""
        for entry in entries:
            event = entry.dagster_event
            data = event.engine_event_data if event is not None else None
            started = event is not None and (event.message or "").startswith(STARTED_PROCESS)
            if started and data is not None and "pid" in data.metadata:
                return int(data.metadata["pid"].value)
        return None
