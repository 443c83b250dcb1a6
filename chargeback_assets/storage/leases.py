"""Run leases: which run computes which tenant, and which runs hold the parallel-run slots.

A lease is one row per lane: `tenant:<name>` (at most one run computes a tenant) or `slot:<n>` (at most
`max_parallel_tenants` runs compute at once, DESIGN §3.7). Taking a lease is a check-and-write inside one
transaction holding the lease lock (`Transaction.lock`: SQLite's write lock, a PostgreSQL advisory lock), so
two processes never both win a lane. The holder renews `heartbeat_at`
while it works; a lease whose heartbeat is older than its time-to-live, or whose run Dagster reports
finished, was left by a worker that died and is taken over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargeback_assets.storage.codec import parse_timestamp, timestamp_text
from chargeback_assets.storage.database import Source, Transaction

TABLE = "run_leases"


def tenant_lane(tenant: str) -> str:
    return f"tenant:{tenant}"


def slot_lane(number: int) -> str:
    return f"slot:{number}"


@dataclass(frozen=True, slots=True)
class Lease:
    lane: str
    run_id: str
    holder: str
    """`host:pid` of the process that holds it, for the operator reading a wait message."""
    acquired_at: datetime
    heartbeat_at: datetime

    def expired(self, now: datetime, ttl: timedelta) -> bool:
        return now - self.heartbeat_at > ttl


def _lease(row: Sequence) -> Lease:
    lane, run_id, holder, acquired_at, heartbeat_at = row
    return Lease(lane, run_id, holder, parse_timestamp(acquired_at), parse_timestamp(heartbeat_at))  # type: ignore[arg-type]


def lease_of(source: Source, lane: str) -> Lease | None:
    row = source.conn.execute(
        f"SELECT lane, run_id, holder, acquired_at, heartbeat_at FROM {TABLE} WHERE lane = ?", (lane,)
    ).fetchone()
    return None if row is None else _lease(row)


def leases(source: Source) -> list[Lease]:
    rows = source.conn.execute(
        f"SELECT lane, run_id, holder, acquired_at, heartbeat_at FROM {TABLE} ORDER BY lane"
    ).fetchall()
    return [_lease(row) for row in rows]


def take_lease(
    tx: Transaction,
    lane: str,
    run_id: str,
    holder: str,
    now: datetime,
    ttl: timedelta,
    finished: Callable[[str], bool],
) -> Lease | None:
    """Take `lane` for `run_id`; returns None when taken, else the live lease that stands in the way.

    Taking a lane the run already holds renews it. A lease left by a dead worker (expired, or its run
    finished) is replaced.
    """
    tx.lock(TABLE)
    current = lease_of(tx, lane)
    if (
        current is not None
        and current.run_id != run_id
        and not current.expired(now, ttl)
        and not finished(current.run_id)
    ):
        return current
    stamp = timestamp_text(now, "lease time")
    acquired = (
        stamp
        if current is None or current.run_id != run_id
        else timestamp_text(current.acquired_at, "lease time")
    )
    tx.conn.execute(
        f"INSERT INTO {TABLE} (lane, run_id, holder, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (lane) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, "
        "acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
        (lane, run_id, holder, acquired, stamp),
    )
    return None


def renew_leases(tx: Transaction, run_id: str, now: datetime) -> int:
    cursor = tx.conn.execute(
        f"UPDATE {TABLE} SET heartbeat_at = ? WHERE run_id = ?", (timestamp_text(now, "lease time"), run_id)
    )
    return cursor.rowcount


def release_leases(tx: Transaction, run_id: str) -> int:
    return tx.conn.execute(f"DELETE FROM {TABLE} WHERE run_id = ?", (run_id,)).rowcount
