"""SQLite, the embedded default: one file, written by several processes (storage/database.py says how).

Tables are STRICT and built by sqlite-utils; money is decimal text. The one writer at a time that
`BEGIN IMMEDIATE` enforces already makes every read-then-write of a transaction exclusive, so `lock` has
nothing to add.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Mapping, Sequence

from chargeback_assets.storage.dialect import ColumnType, Connection, Dialect, Money, Schema

# sqlite-utils imports pandas and numpy whenever they are installed, only to give their scalar types a column
# type; we never hand it either. Loading it with both hidden (a None entry makes their import fail, which it
# expects) keeps about 45 MB out of every run process. frames.py, the one user of pandas, imports it for real.
_HIDDEN = [name for name in ("pandas", "numpy") if name not in sys.modules]
sys.modules.update(dict.fromkeys(_HIDDEN))
try:
    import sqlite_utils
finally:
    for name in _HIDDEN:
        del sys.modules[name]


def _stored(column_type: ColumnType) -> type:
    return str if column_type is Money else column_type


class SqliteSchema(Schema):
    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._db = sqlite_utils.Database(conn)

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
        self._db.table(name).create(
            {column: _stored(kind) for column, kind in columns.items()},
            pk=pk,
            not_null=[c for c in columns if c not in nullable],
            defaults=dict(defaults or {}),
            foreign_keys=list(foreign_keys),
            if_not_exists=if_not_exists,
            strict=True,
        )

    def add_column(
        self, table: str, column: str, column_type: ColumnType, not_null_default: object = None
    ) -> None:
        self._db.table(table).add_column(column, _stored(column_type), not_null_default=not_null_default)

    def create_index(
        self,
        table: str,
        columns: Sequence[str],
        *,
        unique: bool = False,
        nulls_equal: bool = False,
        name: str | None = None,
    ) -> None:
        if not nulls_equal:
            self._db.table(table).create_index(list(columns), index_name=name, unique=unique)
            return
        # NULL never equals NULL in a UNIQUE index, so nullable columns are indexed through IFNULL with a
        # blob sentinel: it keeps NULL and the empty string apart while making two NULLs collide.
        nullable = {row[1] for row in self.conn.execute(f'PRAGMA table_info("{table}")') if not row[3]}
        terms = ", ".join(f"IFNULL({c}, X'00')" if c in nullable else c for c in columns)
        index = name or f"idx_{table}_{'_'.join(columns)}"
        self.conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX {index} ON {table} ({terms})")

    def has_table(self, name: str) -> bool:
        return self._db.table(name).exists()


class SqliteDialect(Dialect):
    name = "sqlite"
    text = "TEXT"

    def begin(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def lock(self, conn: Connection, name: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` holds the file's only write lock until the transaction ends."""

    def schema(self, conn: Connection) -> Schema:
        return SqliteSchema(conn)  # type: ignore[arg-type]

    def same(self, left: str, right: str) -> str:
        return f"IFNULL({left}, X'00') = IFNULL({right}, X'00')"

    def json_flag(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_items(self, column: str, alias: str) -> str:
        return f"json_each({column}) AS {alias}"

    def tables(self, conn: Connection) -> list[str]:
        return [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def columns(self, conn: Connection, table: str) -> list[str]:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]

    def references(self, conn: Connection, table: str) -> set[str]:
        return {row[2] for row in conn.execute(f'PRAGMA foreign_key_list("{table}")')}

    def analyze(self, conn: Connection, table: str) -> None:
        """Nothing to do: without statistics SQLite already joins through the unique index."""

    def renumber_after(self, conn: Connection, table: str) -> None:
        """Nothing to do: an INTEGER PRIMARY KEY always numbers a new row after the table's largest id."""


SQLITE = SqliteDialect()
