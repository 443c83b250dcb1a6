"""What differs between the two databases the repositories run on, behind one interface.

The repositories write SQL that both SQLite and PostgreSQL accept (`?` placeholders, `ON CONFLICT ... DO
UPDATE`, `COALESCE`, `substr`) and ask the database's `Dialect` for the few things they spell differently:
a null-safe equality that can use the dimensions' unique index, a JSON flag, the rows of a JSON array, the
schema's tables and foreign keys, and a lock that makes writers take turns where SQLite's single writer did
that for free. Migrations describe tables through a `Schema` builder, so one ordered history makes either
database (storage/migrations.py). The implementations are storage/sqlite.py and storage/postgres.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

Money = Decimal
"""The column type of exact amounts: TEXT holding decimal text on SQLite (STRICT refuses REAL in it), NUMERIC
on PostgreSQL; read back as `Decimal` either way (the repositories call `Decimal()` on what they read)."""

ColumnType = type[str] | type[int] | type[Decimal]


class DatabaseUnavailableError(RuntimeError):
    """The database could not be reached or refused the credentials: raised at once, naming host and
    database, never the password. Defined here, not beside psycopg, so that catching it costs a SQLite
    deployment no psycopg import."""


class Cursor(Protocol):
    """What the repositories use of a cursor: both sqlite3's and psycopg's have it."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Connection(Protocol):
    """What the repositories use of a connection: sqlite3's, or storage/postgres.py's wrapper of psycopg's."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...

    def close(self) -> None: ...


class Schema(ABC):
    """The schema changes a migration may make, in terms both databases implement.

    Every column is NOT NULL unless listed in `nullable`. A primary key of one integer column numbers new
    rows itself when an insert leaves it out (SQLite's rowid alias; an identity column on PostgreSQL).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @abstractmethod
    def create_table(
        self,
        name: str,
        columns: Mapping[str, ColumnType],
        pk: str | tuple[str, ...],
        nullable: Sequence[str] = (),
        defaults: Mapping[str, object] | None = None,
        foreign_keys: Sequence[tuple[str, str, str]] = (),
        if_not_exists: bool = False,
    ) -> None: ...

    @abstractmethod
    def add_column(
        self, table: str, column: str, column_type: ColumnType, not_null_default: object = None
    ) -> None: ...

    @abstractmethod
    def create_index(
        self,
        table: str,
        columns: Sequence[str],
        *,
        unique: bool = False,
        nulls_equal: bool = False,
        name: str | None = None,
    ) -> None:
        """Named `name`, else `idx_<table>_<columns>`. `nulls_equal` makes two NULLs collide in a unique
        index (SQL's own rule lets any number of rows with NULL in a column through)."""

    @abstractmethod
    def has_table(self, name: str) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Portable DML (`?` placeholders), for migrations that move data."""
        return self.conn.execute(sql, params)


class Dialect(ABC):
    name: str
    text: str
    """The text column type; PostgreSQL's compares bytes (collation "C"), as SQLite does, so that text
    orders alike on both whatever the server's locale."""

    @abstractmethod
    def begin(self, conn: Connection) -> None:
        """Open a write transaction."""

    @abstractmethod
    def lock(self, conn: Connection, name: str) -> None:
        """Make the open transaction's writers that ask for `name` take turns until it ends: the guard of a
        read-then-write that must not interleave (taking a lease, numbering new rows, migrating)."""

    @abstractmethod
    def schema(self, conn: Connection) -> Schema: ...

    @abstractmethod
    def same(self, left: str, right: str) -> str:
        """SQL true when two expressions are equal or both NULL, in the form the `nulls_equal` unique
        index can serve."""

    @abstractmethod
    def json_flag(self, column: str, key: str) -> str:
        """SQL true when the JSON object in `column` has `key` set to true."""

    @abstractmethod
    def json_items(self, column: str, alias: str) -> str:
        """A FROM item with one row per element of the JSON array in `column`, as text in `alias.value`."""

    @abstractmethod
    def tables(self, conn: Connection) -> list[str]:
        """The names of the schema's tables."""

    @abstractmethod
    def columns(self, conn: Connection, table: str) -> list[str]: ...

    @abstractmethod
    def references(self, conn: Connection, table: str) -> set[str]:
        """The tables that `table`'s foreign keys point at."""

    @abstractmethod
    def analyze(self, conn: Connection, table: str) -> None:
        """Give the planner statistics of a temporary table just filled, before a join reads it."""

    @abstractmethod
    def renumber_after(self, conn: Connection, table: str) -> None:
        """After rows were inserted into `table` with their ids given (a copy), make the ids the database
        numbers itself continue after the largest one."""
