"""The databases the storage and stage tests run against: a SQLite file, and a real PostgreSQL server.

A module's conftest imports the fixtures (`from chargeback_assets_tests.databases import ...`). `storage` is
parametrized over both backends (the PostgreSQL case marked `postgres`, so `pytest -m postgres` selects
it) and gives the config's `storage` section of an empty, migrated database; `db` opens it. One server is
started per session with one migrated database, emptied (TRUNCATE, and any version a test added removed)
before each test: much faster than a database per test. `blank_storage` gives a database with no schema at
all, for migration tests.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
import pytest

from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.migrations import MIGRATIONS, VERSION_TABLE, Migration, latest_version
from chargeback_assets_tests.real_postgres import PostgresServer, running_postgres

SHARED_DATABASE = "chargeback"
UNIQUE_VIOLATION = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)
"""What inserting a row a unique index already holds raises, on either backend."""
_blank_names = itertools.count()


@dataclass(frozen=True)
class StorageTarget:
    """A database a test may open, and the config's `storage` section that names it."""

    backend: str
    """`sqlite` or `postgres`."""
    section: dict[str, str]

    def open(self, migrations: Sequence[Migration] = MIGRATIONS) -> ChargebackDatabase:
        if self.backend == "sqlite":
            return ChargebackDatabase.open(self.section["path"], migrations=migrations)
        return ChargebackDatabase.connect(self.section["url"], migrations=migrations)


BACKENDS = (pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        ChargebackDatabase.connect(server.create_database(SHARED_DATABASE)).close()
        yield server


def _emptied(server: PostgresServer) -> str:
    """The shared database's URL, every table but the schema version emptied (identities restarted)."""
    url = server.url(SHARED_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")  # a test that leaked a connection fails here, not hangs
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != %s",
                (VERSION_TABLE,),
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute(f"DELETE FROM {VERSION_TABLE} WHERE version > %s", (latest_version(),))
    return url


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path) -> StorageTarget:
    if request.param == "sqlite":
        return StorageTarget("sqlite", {"path": str(tmp_path / "chargeback.db")})
    return StorageTarget("postgres", {"url": _emptied(request.getfixturevalue("postgres_server"))})


@pytest.fixture(params=BACKENDS)
def blank_storage(request: pytest.FixtureRequest, tmp_path) -> StorageTarget:
    """A database with no tables at all (a new SQLite file, a new PostgreSQL database)."""
    if request.param == "sqlite":
        return StorageTarget("sqlite", {"path": str(tmp_path / "blank.db")})
    server = request.getfixturevalue("postgres_server")
    return StorageTarget("postgres", {"url": server.create_database(f"blank_{next(_blank_names)}")})


@pytest.fixture
def db(storage: StorageTarget) -> Iterator[ChargebackDatabase]:
    database = storage.open()
    yield database
    database.close()
