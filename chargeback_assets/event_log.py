"""Dagster's SQLite event log with each database file's SQLAlchemy engine kept between events.

Dagster's `SqliteEventLogStorage` builds a new engine for every connection it opens, and an engine's
cache of compiled SQL goes with it: every event a run stores compiles its statements again. That was a
third of what storing a 30-day backfill's ~1,000 events cost (`python -m bench backfill` prints that
cost as the "event log floor"). This storage is Dagster's own with one change: the engine of each file
(the index and each run's file) is kept, at most `KEPT_ENGINES` of them, the most recently used, and the
question "has the index this table?" asked for every check evaluation uses the index's.

Connections are still opened and closed per transaction, as Dagster does (`NullPool`): closing the last
connection checkpoints the write-ahead log into the run's file, which is the change the webserver's log
watcher waits for, and no file stays open between events, so other processes see the same files as
before. Events stay where Dagster's default puts them, `<DAGSTER_HOME>/history/runs`: an instance switched
to this storage keeps its history. Dagster is pinned (setup.cfg); `_connect` is the private method this
overrides, and the tests that run the real webserver and daemon on the repo's instance exercise it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

KEPT_ENGINES = 16
"""Enough for the index and the runs a process writes or the webserver shows at once; an engine without
connections is small (its statement cache), and a file not used lately gets a new one when it is."""


class EngineKeepingSqliteEventLogStorage(SqliteEventLogStorage):
    """Configured by the Dagster home, `dagster_home` (read from DAGSTER_HOME in .dagster_home/dagster.yaml);
    the events are in its folder for them (`history/runs`), as with Dagster's default event log."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()  # Dagster's _db_lock is held through whole transactions
        super().__init__(_event_logs_directory(dagster_home), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> EngineKeepingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Asked for every check evaluation stored; Dagster's answers it with an engine of its own too."""
        engine = self._engine(INDEX_SHARD_NAME)  # not under _db_lock: it is asked inside a transaction
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def _engine(self, shard: str) -> Engine:
        """The file's kept engine, made on first use; the least recently used one goes past the limit."""
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = self._engines[shard] = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            if len(self._engines) > KEPT_ENGINES:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def dispose(self) -> None:
        super().dispose()
        with self._engines_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
