"""Dagster's SQLite event log, storing an event in one transaction per file, a batch of events too.

Dagster's `SqliteEventLogStorage` opens a new connection, on a new SQLAlchemy engine, for every group of
statements it writes, and closes it after: a check evaluation took three transactions on the index and one
on the run's file, each with its own connection. It also stores the batches Dagster hands it (a run's
planned materializations, the materializations of one step's partitions) one event at a time. Storing a
30-day backfill's ~1,000 events took ~5 s of a ~25 s run (`python -m bench backfill` prints this as the
"event log floor"). This storage is Dagster's own with these changes:

- Every event, or batch of events, is stored with one transaction per file (the index and the run's
  file): a failure rolls all of it back, so Dagster's fallback of storing a failed batch's events one by
  one writes none of them twice.
- Dagster hands over batches only when `DAGSTER_EVENT_BATCH_SIZE` is set: this storage sets it to
  `EVENT_BATCH_SIZE` in its process unless it is set already.
- Each file's engine is kept (at most `KEPT_ENGINES` of them, the most recently used) with one open
  connection, so neither the connection nor its compiled SQL is made again for the next event; so are the
  answers to the questions Dagster asks of the index's schema again and again, as each is yes (below).
- After each transaction on a run's file, the file's modification time is set to now: the webserver's log
  watcher waits for a change to the file itself, and the events are in its write-ahead log (Dagster got
  the change from closing the last connection, which checkpoints). A checkpoint per transaction gave it
  too, at ~0.8 ms and a sync of the file each: a revised day stores ~110 events. SQLite still checkpoints
  on its own once the log holds 1,000 pages, and when the last connection closes.
- Each connection commits with `synchronous = NORMAL`, as the chargeback database does: a commit is
  written to the write-ahead log without waiting for the disk, which syncs at each checkpoint. A process
  that dies loses nothing it committed; a power cut or an operating-system crash may lose the last events
  before it, never the file's consistency. Waiting for the disk at every commit (Dagster's default) was
  half of storing a revised day's ~110 events: medians of 215-353 ms, against 122-141 ms without.
- A new run's file is created and stamped at Dagster's head revision with the migration scripts read
  once per process (`_initdb`), and in one transaction: Dagster's own way read all of them twice for every
  run and committed each table and index on its own; making a run's file took 62-69 ms, then 29-36 ms
  with the scripts read once, and ~14 ms in one transaction.

Events stay where Dagster's default puts them, `<DAGSTER_HOME>/history/runs`: an instance switched to this
storage keeps its history. Dagster is pinned (setup.cfg); `_connect`, `_initdb` and `store_event` are the
methods this overrides, and the tests that run the real webserver and daemon on the repo's instance exercise
them.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import dagster._core.storage.event_log.sqlite.sqlite_event_log as dagster_sqlite_event_log
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster import EventLogEntry, StringSource
from dagster._core.storage.event_log import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sql import get_alembic_config, safe_commit
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_fixed

EVENT_BATCH_SIZE = 1000
"""Events per batch: a 30-day run plans 369 materializations and check evaluations, a step materializes
one asset's 30 partitions; they are written within milliseconds of each other, so batching them delays
nothing a user sees."""
KEPT_ENGINES = 16
"""Enough for the index and the runs a process writes or the webserver shows at once; an engine is small
(one idle connection and its statement cache), and a file not used lately gets a new one when it is."""
SPARE_CONNECTIONS = 8
"""Connections a file's engine opens beside its kept one when threads read at once; closed when returned."""


class EngineKeepingSqliteEventLogStorage(SqliteEventLogStorage):
    """Configured by the Dagster home, `dagster_home` (read from DAGSTER_HOME in .dagster_home/dagster.yaml);
    the events are in its folder for them (`history/runs`), as with Dagster's default event log."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()  # Dagster's _db_lock is held through whole transactions
        self._batch = threading.local()
        self._tables: set[str] = set()
        self._asset_key_columns: set[str] = set()
        self._secondary_indexes: set[str] = set()
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
        super().__init__(_event_logs_directory(dagster_home), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> EngineKeepingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event(self, event: EventLogEntry) -> None:
        self.store_event_batch([event])

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store the batch in one transaction per file; a failure rolls all of it back, and Dagster
        then stores the events one by one."""
        with self._db_lock, ExitStack() as stack:
            self._batch.connections = {}
            self._batch.stack = stack
            try:
                for event in events:
                    super().store_event(event)
            finally:
                self._batch.connections = None

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        held = getattr(self._batch, "connections", None)
        if held is None:
            with self._db_lock, self._transaction(shard) as conn:
                yield conn
            return
        conn = held.get(shard)
        if conn is None:
            conn = held[shard] = self._batch.stack.enter_context(self._transaction(shard))
        yield conn

    @contextmanager
    def _transaction(self, shard: str) -> Iterator[Connection]:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn:
            with conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME:
                os.utime(self.path_for_shard(shard))

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """A run's new file gets Dagster's tables and its head revision, as Dagster's `_initdb` gives it, from
        migration scripts read once per process. The index keeps Dagster's own way: it is made once per
        instance, and its stamp depends on what an older Dagster left there."""
        if for_index_shard:
            super()._initdb(engine, for_index_shard=True)
        else:
            _init_run_file(engine)

    def has_table(self, table_name: str) -> bool:
        """Asked for every check evaluation stored; a table, once there, stays (migrations add tables)."""

        def ask() -> bool:
            engine = self._engine(INDEX_SHARD_NAME)  # not under _db_lock: it is asked inside a transaction
            with engine.connect() as conn:
                return bool(engine.dialect.has_table(conn, table_name))

        return _yes_is_kept(self._tables, table_name, ask)

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        """Asked, by reading the table's columns, for every asset event stored and every read of an asset's
        record (47 times in a revised day's run). A column, once there, stays: migrations add columns."""
        ask = functools.partial(super()._has_asset_key_col_on_connection, conn, column_name)
        return _yes_is_kept(self._asset_key_columns, column_name, ask)

    def has_secondary_index(self, name: str) -> bool:
        """Asked, with a query, whenever asset records are read (18 times in a revised day's run): a data
        migration, once completed, stays completed until the index is wiped."""
        ask = functools.partial(super().has_secondary_index, name)
        return _yes_is_kept(self._secondary_indexes, name, ask)

    def _engine(self, shard: str) -> Engine:
        """The file's kept engine, made on first use; the least recently used one goes past the limit."""
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = self._engines[shard] = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=SPARE_CONNECTIONS,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
            if len(self._engines) > KEPT_ENGINES:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def wipe(self) -> None:
        """Dagster's wipe deletes the run files: the kept connections are closed first, not left writing to
        deleted files."""
        self._dispose_engines()
        self._secondary_indexes.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()


def _yes_is_kept(kept: set[str], name: str, ask: Callable[[], bool]) -> bool:
    """`ask()` about the index's schema until it answers yes, then `kept`'s yes: what it asks about is only
    ever added. A no is asked again, since a migration may add it."""
    if name in kept:
        return True
    found = ask()
    if found:
        kept.add(name)
    return found


def _commit_without_waiting_for_the_disk(connection: sqlite3.Connection, _record: object) -> None:
    connection.execute("PRAGMA synchronous = NORMAL")


@functools.cache
def _dagster_migrations() -> ScriptDirectory:
    return ScriptDirectory.from_config(get_alembic_config(dagster_sqlite_event_log.__file__))


def _another_process_is_creating_it(exc: BaseException) -> bool:
    """The errors Dagster's `_initdb` takes for a webserver or daemon creating the same file at once."""
    message = str(exc)
    return isinstance(exc, DBAPIError | sqlite3.DatabaseError) and (
        bool(re.search(r"table [A-Za-z_]* already exists", message))
        or "database is locked" in message
        or "UNIQUE constraint failed: alembic_version.version_num" in message
    )


@retry(
    retry=retry_if_exception(_another_process_is_creating_it),
    stop=stop_after_attempt(11),
    wait=wait_fixed(0.2),
    reraise=True,
)
def _init_run_file(engine: Engine) -> None:
    """Write-ahead-log mode first, then the tables, indexes and stamp in one transaction: each of Dagster's
    ~20 statements committed on its own, each commit a sync of a rollback journal (~30 of a run file's
    ~40 ms)."""
    with engine.connect() as conn:
        migrations = MigrationContext.configure(conn)
        if migrations.get_current_revision() is None:
            conn.rollback()  # the revision's read began a transaction; the mode changes outside one
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            SqlEventLogStorageMetadata.create_all(conn)
            migrations.stamp(_dagster_migrations(), "head")
            safe_commit(conn)
