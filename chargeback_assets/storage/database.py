"""The one SQLite file of the project: opening it, migrating it and writing to it safely.

Several Dagster runs (separate processes) write the same file, so the connection is set up for that: WAL
lets readers run beside the one writer, a busy timeout makes a writer wait instead of failing, and every
write transaction starts with `BEGIN IMMEDIATE`. A deferred `BEGIN` that reads before it writes fails with
"database is locked" at once when another writer got there first, whatever the timeout; taking the write
lock up front makes it wait its turn instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from os import PathLike
from pathlib import Path

import sqlite_utils

from chargeback_assets.storage.codec import day_bounds, day_text
from chargeback_assets.storage.migrations import apply_migrations, latest_version, schema_version

DEFAULT_BUSY_TIMEOUT_S = 30.0


def _switch_to_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode, waiting out other processes doing the same to a new file.

    The journal-mode switch needs the file to itself, and SQLite answers "database is locked" at once there
    instead of consulting the busy timeout, so the wait is ours: bounded by the same timeout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class Transaction:
    """A handle on an open `BEGIN IMMEDIATE` transaction; every repository write takes one.

    Write functions ask for a `Transaction` rather than the database so that a write outside a transaction
    is a type error, not a silently auto-committed statement.
    """

    __slots__ = ("conn", "db")

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn


class ChargebackDatabase:
    """An open, migrated database file. Reads may use it directly; writes go through `transaction()`."""

    __slots__ = ("conn", "db", "path")

    def __init__(self, path: Path, db: sqlite_utils.Database) -> None:
        self.path = path
        self.db = db
        self.conn: sqlite3.Connection = db.conn

    @classmethod
    def open(
        cls, path: str | PathLike[str], busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> ChargebackDatabase:
        """Open (creating if needed) and migrate; safe when several processes race to create the file."""
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be >= 0, got {busy_timeout_s}")
        file = Path(path)
        if not file.parent.is_dir():
            raise FileNotFoundError(f"database directory {file.parent} does not exist (database path {file})")
        conn = sqlite3.connect(file, timeout=busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            db = sqlite_utils.Database(conn)
            _switch_to_wal(conn, busy_timeout_s)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            database = cls(file, db)
            # Cheap check first so that an up-to-date file is opened without waiting for the write lock;
            # apply_migrations checks again under the lock.
            if schema_version(db) != latest_version():
                with database.transaction() as tx:
                    apply_migrations(tx.db)
        except BaseException:
            conn.close()
            raise
        return database

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """`BEGIN IMMEDIATE` ... `COMMIT`; any exception, KeyboardInterrupt included, rolls it all back."""
        if self.conn.in_transaction:
            raise RuntimeError(f"a transaction is already open on {self.path}; transactions do not nest")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(self.db)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ChargebackDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChargebackDatabase({str(self.path)!r})"


Source = ChargebackDatabase | Transaction
"""What a read accepts: the database itself, or a transaction when the read must see its own writes."""


def delete_day(
    tx: Transaction,
    table: str,
    ecosystem: str,
    tenant_id: str,
    day: date,
    timestamp_column: str | None = None,
) -> int:
    """Delete one tenant's rows of one day, by its `date` column or by a timestamp column's `[day, day+1)`."""
    if timestamp_column is None:
        where, params = "date = ?", (day_text(day),)
    else:
        where, params = f"{timestamp_column} >= ? AND {timestamp_column} < ?", day_bounds(day)
    cursor = tx.conn.execute(
        f"DELETE FROM {table} WHERE ecosystem = ? AND tenant_id = ? AND {where}",
        (ecosystem, tenant_id, *params),
    )
    return cursor.rowcount
