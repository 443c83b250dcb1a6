"""PostgreSQL through psycopg 3: for teams whose runs work on several machines and cannot share a file.

The repositories' SQL is written once, with sqlite3's `?` placeholders; `PostgresConnection` hands it to
psycopg with `%s` (a `%` of the statement doubled), so the repositories keep one text per statement. The
connection is in autocommit mode: a read outside a transaction is its own statement and leaves no
transaction open, and a write transaction is an explicit `BEGIN ... COMMIT` (storage/database.py).

Transactions run at READ COMMITTED. What SQLite's single writer made exclusive is made so explicitly: the
tenant lease keeps two runs off one tenant's rows (storage/leases.py), and the few read-then-write steps
shared between tenants (taking a lease, numbering new dimensions, migrating) take a transaction-scoped
advisory lock first (`lock`). Money is NUMERIC (psycopg reads it as `Decimal`); timestamps and dates stay the
fixed-width text of storage/codec.py, so range queries and ordering are those of SQLite.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from chargeback_assets.redaction import MASK, scrub
from chargeback_assets.storage.dialect import (
    ColumnType,
    Connection,
    Cursor,
    DatabaseUnavailableError,
    Dialect,
    Money,
    Schema,
)
from chargeback_assets.validation import DatabaseUrl

DEFAULT_CONNECT_TIMEOUT_S = 10
"""How long to wait for an unreachable server when the URL sets no `connect_timeout` (libpq's own default
is to wait forever)."""
MINIMUM_SERVER_VERSION = 150000
"""PostgreSQL 15: the first with `NULLS NOT DISTINCT`, which the chargeback dimensions' unique index needs."""
_IDENTIFIER_LIMIT = 63
_TEXT = 'TEXT COLLATE "C"'
_TYPES: dict[ColumnType, str] = {str: _TEXT, int: "BIGINT", Money: "NUMERIC"}
_IN_TRANSACTION = (TransactionStatus.ACTIVE, TransactionStatus.INTRANS, TransactionStatus.INERROR)
_LITERAL = re.compile(r"('(?:[^']|'')*')")


@cache
def _psycopg_sql(sql: str) -> str:
    """`?` placeholders as `%s`, and a literal `%` doubled, outside quoted literals."""
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "".join(parts)


class PostgresConnection:
    """A psycopg connection with the part of sqlite3's interface the repositories use."""

    def __init__(self, conn: psycopg.Connection, location: str) -> None:
        self._conn = conn
        self.location = location

    @property
    def in_transaction(self) -> bool:
        """A broken connection (status UNKNOWN) has no transaction to roll back: the server ended it."""
        return self._conn.info.transaction_status in _IN_TRANSACTION

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        if not params:
            return self._conn.execute(sql)  # type: ignore[return-value]
        return self._conn.execute(_psycopg_sql(sql), params)  # type: ignore[return-value]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_psycopg_sql(sql), rows)

    def close(self) -> None:
        self._conn.close()


def _conninfo(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ValueError("storage.url is not a valid postgresql:// URL") from None


def connect(url: str) -> PostgresConnection:
    """Connect, or fail at once with a `DatabaseUnavailableError` naming host, port, database and user."""
    info = _conninfo(url)
    where = DatabaseUrl(url).location
    settings = {"connect_timeout": DEFAULT_CONNECT_TIMEOUT_S} if "connect_timeout" not in info else {}
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="chargeback-assets", **settings)
    except psycopg.Error as error:
        reason = str(error).strip()
        if info.get("password"):
            reason = reason.replace(info["password"], MASK)
        raise DatabaseUnavailableError(
            f"cannot connect to the chargeback database {where}: {scrub(reason)}"
        ) from None
    if conn.info.server_version < MINIMUM_SERVER_VERSION:
        version = conn.info.server_version
        conn.close()
        raise DatabaseUnavailableError(
            f"the chargeback database {where} runs PostgreSQL {version // 10000}.{version % 10000}; "
            "version 15 or newer is required"
        )
    return PostgresConnection(conn, where)


def _identifier(name: str) -> str:
    """`name`, or a shortened unique form when PostgreSQL would cut it (it keeps 63 bytes)."""
    if len(name) <= _IDENTIFIER_LIMIT:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{name[: _IDENTIFIER_LIMIT - 9]}_{digest}"


def _literal(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"column defaults must be integers or strings, got {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


class PostgresSchema(Schema):
    def create_table(
        self,
        name: str,
        columns: Mapping[str, ColumnType],
        pk: str | tuple[str, ...],
        nullable: Sequence[str] = (),
        defaults: Mapping[str, object] | None = None,
        foreign_keys: Sequence[tuple[str, str, str]] = (),
        if_not_exists: bool = False,
    ) -> None:
        keys = (pk,) if isinstance(pk, str) else pk
        defaults = defaults or {}
        lines = []
        for column, kind in columns.items():
            line = f"{column} {_TYPES[kind]}"
            if keys == (column,) and kind is int:
                line += " GENERATED BY DEFAULT AS IDENTITY"
            if column not in nullable:
                line += " NOT NULL"
            if column in defaults:
                line += f" DEFAULT {_literal(defaults[column])}"
            lines.append(line)
        lines.append(f"PRIMARY KEY ({', '.join(keys)})")
        lines += [f"FOREIGN KEY ({c}) REFERENCES {other} ({key})" for c, other, key in foreign_keys]
        exists = "IF NOT EXISTS " if if_not_exists else ""
        self.conn.execute(f"CREATE TABLE {exists}{name} ({', '.join(lines)})")

    def add_column(
        self, table: str, column: str, column_type: ColumnType, not_null_default: object = None
    ) -> None:
        default = "" if not_null_default is None else f" NOT NULL DEFAULT {_literal(not_null_default)}"
        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {_TYPES[column_type]}{default}")

    def create_index(
        self,
        table: str,
        columns: Sequence[str],
        *,
        unique: bool = False,
        nulls_equal: bool = False,
        name: str | None = None,
    ) -> None:
        index = _identifier(name or f"idx_{table}_{'_'.join(columns)}")
        self.conn.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {index} ON {table} ({', '.join(columns)})"
            + (" NULLS NOT DISTINCT" if nulls_equal else "")
        )

    def has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0]


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresDialect(Dialect):
    name = "postgresql"
    text = _TEXT

    def begin(self, conn: Connection) -> None:
        conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def lock(self, conn: Connection, name: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(f"chargeback-assets:{name}"),))

    def schema(self, conn: Connection) -> Schema:
        return PostgresSchema(conn)

    def same(self, left: str, right: str) -> str:
        return f"{left} IS NOT DISTINCT FROM {right}"

    def json_flag(self, column: str, key: str) -> str:
        return f"({column}::jsonb -> '{key}') = 'true'::jsonb"

    def json_items(self, column: str, alias: str) -> str:
        return f"jsonb_array_elements_text({column}::jsonb) AS {alias}(value)"

    def tables(self, conn: Connection) -> list[str]:
        return [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]

    def columns(self, conn: Connection, table: str) -> list[str]:
        return [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        ]

    def references(self, conn: Connection, table: str) -> set[str]:
        return {
            name
            for (name,) in conn.execute(
                "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = to_regclass(?)",
                (table,),
            )
        }

    def analyze(self, conn: Connection, table: str) -> None:
        """Autovacuum never analyzes a temporary table; unanalyzed, one of 16,000 rows is taken for one row
        and joined by nested loop (minutes per tenant-day) instead of by hash (milliseconds)."""
        conn.execute(f'ANALYZE "{table}"')

    def renumber_after(self, conn: Connection, table: str) -> None:
        """An identity column's sequence does not see ids that were given: restart it after the largest."""
        for (column,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) AND attidentity != ''", (table,)
        ).fetchall():
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false) "
                f'FROM "{table}"',
                (table, column),
            )


POSTGRES = PostgresDialect()
