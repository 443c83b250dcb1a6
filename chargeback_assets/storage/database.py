"""The project's database, SQLite or PostgreSQL: opening it, migrating it and writing to it safely.

`open_database(storage)` picks the backend from the config: `storage.path` is a SQLite file (the embedded
default), `storage.url` a PostgreSQL database (storage/postgres.py). The repositories see the same
`ChargebackDatabase` and `Transaction` either way; what the two spell differently is their `dialect`.

Several Dagster runs (separate processes) write the same SQLite file, so its connection is set up for that:
WAL lets readers run beside the one writer, a busy timeout makes a writer wait instead of failing, and every
write transaction starts with `BEGIN IMMEDIATE`. A deferred `BEGIN` that reads before it writes fails with
"database is locked" at once when another writer got there first, whatever the timeout; taking the write
lock up front makes it wait its turn instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from chargeback_assets.storage.codec import day_bounds, day_text
from chargeback_assets.storage.dialect import Connection, Dialect, Schema
from chargeback_assets.storage.migrations import (
    MIGRATIONS,
    Migration,
    apply_migrations,
    latest_version,
    schema_version,
)
from chargeback_assets.storage.sqlite import SQLITE

if TYPE_CHECKING:
    from chargeback_assets.config import StorageConfig

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
    """A handle on an open write transaction; every repository write takes one.

    Write functions ask for a `Transaction` rather than the database so that a write outside a transaction
    is a type error, not a silently auto-committed statement.
    """

    __slots__ = ("conn", "dialect", "location")

    def __init__(self, conn: Connection, dialect: Dialect, location: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.location = location

    @property
    def schema(self) -> Schema:
        return self.dialect.schema(self.conn)

    def lock(self, name: str) -> None:
        """Writers asking for `name` take turns until this transaction ends (see `Dialect.lock`)."""
        self.dialect.lock(self.conn, name)


class ChargebackDatabase:
    """An open, migrated database. Reads may use it directly; writes go through `transaction()`."""

    __slots__ = ("conn", "dialect", "location", "path")

    def __init__(self, conn: Connection, dialect: Dialect, location: str, path: Path | None = None) -> None:
        self.conn = conn
        self.dialect = dialect
        self.location = location
        """Where the data is, as it may be shown: the file, or the URL without its password."""
        self.path = path
        """The SQLite file; None on PostgreSQL."""

    @classmethod
    def open(
        cls,
        path: str | PathLike[str],
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> ChargebackDatabase:
        """Open (creating if needed) and migrate a SQLite file; safe when several processes race to create
        it. `migrations` is the history to bring it to (tests build older files with a prefix of it)."""
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be >= 0, got {busy_timeout_s}")
        file = Path(path)
        if not file.parent.is_dir():
            raise FileNotFoundError(f"database directory {file.parent} does not exist (database path {file})")
        conn = sqlite3.connect(file, timeout=busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _switch_to_wal(conn, busy_timeout_s)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            return cls(conn, SQLITE, str(file), file)._migrated(migrations)
        except BaseException:
            conn.close()
            raise

    @classmethod
    def connect(cls, url: str, migrations: Sequence[Migration] = MIGRATIONS) -> ChargebackDatabase:
        """Connect to a PostgreSQL database and migrate it; fails at once, naming host and database (never
        the password), when the server cannot be reached or refuses the credentials."""
        # Imported here: psycopg adds about 9 MB to every process, and a SQLite deployment never needs it.
        from chargeback_assets.storage import postgres

        conn = postgres.connect(url)
        try:
            return cls(conn, postgres.POSTGRES, conn.location)._migrated(migrations)
        except BaseException:
            conn.close()
            raise

    def _migrated(self, migrations: Sequence[Migration]) -> ChargebackDatabase:
        # Cheap check first so that an up-to-date database is opened without waiting for the write lock;
        # apply_migrations checks again under it.
        if schema_version(self) != latest_version(migrations):
            with self.transaction() as tx:
                apply_migrations(tx, migrations)
        return self

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN ... COMMIT; any exception, KeyboardInterrupt included, rolls it all back."""
        if self.conn.in_transaction:
            raise RuntimeError(f"a transaction is already open on {self.location}; transactions do not nest")
        self.dialect.begin(self.conn)
        try:
            yield Transaction(self.conn, self.dialect, self.location)
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
        return f"ChargebackDatabase({self.location!r})"


Source = ChargebackDatabase | Transaction
"""What a read accepts: the database itself, or a transaction when the read must see its own writes."""


def open_database(storage: StorageConfig) -> ChargebackDatabase:
    """The configured database, open and migrated: PostgreSQL when `storage.url` is set, else the SQLite
    file `storage.path`, its folder created if missing."""
    if storage.url is not None:
        return ChargebackDatabase.connect(storage.url.reveal())
    assert storage.path is not None  # the config holds exactly one of them
    storage.path.parent.mkdir(parents=True, exist_ok=True)
    return ChargebackDatabase.open(storage.path)


def held_open(storage: StorageConfig) -> ChargebackDatabase | None:
    """An idle connection to the SQLite database for a run to hold until it ends (None on PostgreSQL).

    SQLite checkpoints the write-ahead log into the file, syncs the file and deletes the log whenever the
    last connection to it closes, and the next connection makes the log again. Each step of a run opens and
    closes the database, so each paid for that: with one connection held for the run, a step's close is only
    a close, and the log is checkpointed as it fills (every 1,000 pages) and when the held one closes. It
    reads nothing after opening, so it holds back neither a writer nor a checkpoint.
    """
    return None if storage.url is not None else open_database(storage)


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
