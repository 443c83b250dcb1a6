"""A run's lanes: a lease on every tenant it computes and on one parallel-run slot, held until it ends.

DESIGN §3.7 asks for one run per tenant at a time and at most `max_parallel_tenants` runs at once in every
launch path. Dagster's run queue cannot promise that alone: `dagster asset materialize` runs in-process and
never queues, and a UI backfill over a few dates and several tenants becomes runs that span tenants and
carry no tenant tag. So the promise is kept where every path passes, in our own database: before its first
step computes anything, a run takes the lease of each of its tenants (in sorted order, so two runs never
wait on each other) and then a slot, waiting while another run holds them. A heartbeat thread renews the
leases; they are released when the run ends, however it ends. A worker killed outright leaves leases whose
heartbeat stops, or whose run Dagster then marks failed, and the next run takes them over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.leases import (
    Lease,
    release_leases,
    renew_leases,
    slot_lane,
    take_lease,
    tenant_lane,
)

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=60)
"""A lease not renewed for this long belonged to a worker that died."""
HEARTBEAT_SECONDS = 10.0
POLL_SECONDS = 0.5
REPORT_EVERY_SECONDS = 30.0
HOLDING = "run leases held:"
"""How the run's log announces it may compute: what it holds (tests read the event log for it)."""

OpenDatabase = Callable[[], AbstractContextManager[ChargebackDatabase]]


def _describe(blockers: Iterable[Lease]) -> str:
    return ", ".join(
        f"run {lease.run_id} ({lease.holder}, since {lease.acquired_at:%H:%M:%S}Z)" for lease in blockers
    )


class RunLanes:
    """The leases of one run. `finished(run_id)` says whether Dagster considers another run over."""

    def __init__(
        self,
        open_database: OpenDatabase,
        run_id: str,
        slots: int,
        *,
        finished: Callable[[str], bool],
        ttl: timedelta = LEASE_TTL,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.run_id = run_id
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._open = open_database
        self._slots = slots
        self._finished = finished
        self._ttl = ttl
        self._heartbeat_seconds = heartbeat_seconds
        self._poll_seconds = poll_seconds
        self._tenants: set[str] = set()
        self._slot: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def hold(self, tenants: Iterable[str], report: Callable[[str], None] = log.info) -> None:
        """Take every tenant's lease not held yet, in sorted order, then a slot; wait as long as needed.

        The wait sleeps in the calling thread, so a Terminate interrupts it like any other step work.
        """
        missing = sorted(set(tenants) - self._tenants)
        if not missing and self._slot is not None:
            return
        with self._open() as db:
            for tenant in missing:
                self._take(db, [tenant_lane(tenant)], f"tenant {tenant}", report)
                self._tenants.add(tenant)
            if self._slot is None:
                lanes = [slot_lane(number) for number in range(self._slots)]
                self._slot = self._take(db, lanes, f"one of {self._slots} parallel-run slots", report)
        self._start_heartbeat()
        report(f"{HOLDING} tenants {', '.join(sorted(self._tenants))}; {self._slot}")

    def release(self) -> None:
        """Give every lease back; safe to call more than once and after a failed `hold`."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        with self._open() as db, db.transaction() as tx:
            release_leases(tx, self.run_id)
        self._tenants.clear()
        self._slot = None

    def _take(
        self, db: ChargebackDatabase, lanes: list[str], what: str, report: Callable[[str], None]
    ) -> str:
        waited_since: float | None = None
        reported_at = 0.0
        while True:
            blockers = []
            for lane in lanes:
                with db.transaction() as tx:
                    blocker = take_lease(
                        tx, lane, self.run_id, self.holder, datetime.now(UTC), self._ttl, self._is_finished
                    )
                if blocker is None:
                    if waited_since is not None:
                        report(f"took {what} after waiting {time.monotonic() - waited_since:.1f}s")
                    return lane
                blockers.append(blocker)
            now = time.monotonic()
            if waited_since is None:
                waited_since = now
            if now - reported_at >= REPORT_EVERY_SECONDS:
                report(f"waiting for {what}, held by {_describe(blockers)}")
                reported_at = now
            time.sleep(self._poll_seconds)

    def _is_finished(self, run_id: str) -> bool:
        try:
            return self._finished(run_id)
        except Exception:  # the instance being unreachable must not break the wait; expiry still applies
            log.warning("could not ask whether run %s is finished", run_id, exc_info=True)
            return False

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None:
            return
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"run-leases-{self.run_id[:8]}", daemon=True
        )
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            try:
                with self._open() as db, db.transaction() as tx:
                    renew_leases(tx, self.run_id, datetime.now(UTC))
            except Exception:
                log.warning("run %s: could not renew its leases", self.run_id, exc_info=True)
