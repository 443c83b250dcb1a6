"""Copying every row of one chargeback database into another (SQLite to PostgreSQL, and back), verified.

A team moving to PostgreSQL takes its history along; one moving back to a file can too. Both databases are
at the same schema version (opening one migrates it), so a table has the same columns on both sides; what
differs is only how an amount is held (decimal text on SQLite, NUMERIC on PostgreSQL), which the copy
converts. The copy is one transaction on the destination, checked before it commits: the row count of
every table and, per (tenant, day), the billed total and the charged total must equal the source's, or
nothing is kept. A destination that holds rows is refused unless the caller replaces them (in that same
transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

from chargeback_assets.storage.codec import money_text
from chargeback_assets.storage.database import ChargebackDatabase, Source, Transaction
from chargeback_assets.storage.tenants import tenant_tables

BATCH_ROWS = 5000
DayKey = tuple[str, str, str]
"""(ecosystem, tenant_id, day): a tenant's day, as its rows name it."""


@dataclass(frozen=True)
class Contents:
    """What a copy must carry over: rows per table, and per (tenant, day) the billed and charged totals."""

    rows: dict[str, int]
    billed: dict[DayKey, Decimal]
    charged: dict[DayKey, Decimal]

    @property
    def days(self) -> list[DayKey]:
        return sorted(self.billed.keys() | self.charged.keys())


class DestinationNotEmptyError(RuntimeError):
    """The destination already holds rows, and the caller did not ask to replace them."""


class CopyMismatchError(RuntimeError):
    """The destination did not end up with what the source holds; the copy was rolled back."""

    def __init__(self, source: Contents, copied: Contents) -> None:
        super().__init__("the copy differs from the source; nothing was kept")
        self.source, self.copied = source, copied


def contents(source: Source) -> Contents:
    """Row counts of every table with tenant rows, and exact per-day totals of the bill and the chargeback
    (summed here as Decimal: SQLite's SUM of decimal text would be a float)."""
    rows = {
        table: source.conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        for table in sorted(tenant_tables(source))
    }
    return Contents(
        rows, _day_totals(source, "billing", "total_cost"), _day_totals(source, "chargeback_facts", "amount")
    )


def _day_totals(source: Source, table: str, amount: str) -> dict[DayKey, Decimal]:
    totals: dict[DayKey, Decimal] = {}
    cursor = source.conn.execute(
        f"SELECT ecosystem, tenant_id, substr(timestamp, 1, 10), {amount} FROM {table}"
    )
    for ecosystem, tenant_id, day, value in cursor:
        key = (ecosystem, tenant_id, day)
        totals[key] = totals.get(key, Decimal(0)) + Decimal(value)
    return totals


def copy_database(source: ChargebackDatabase, destination: ChargebackDatabase, *, replace: bool) -> Contents:
    """Copy every tenant row of `source` into `destination`; returns what both now hold.

    Raises DestinationNotEmptyError (nothing changed) when the destination has rows and `replace` is false,
    and CopyMismatchError (rolled back) when the copy does not match the source.
    """
    expected = contents(source)
    tables = tenant_tables(source)  # each before the tables it references
    with destination.transaction() as tx:
        held = {table: count for table, count in contents(tx).rows.items() if count}
        if held and not replace:
            listed = ", ".join(f"{table} {count}" for table, count in sorted(held.items()))
            raise DestinationNotEmptyError(
                f"{destination.location} already holds rows ({listed}); copy into an empty database, "
                "or replace them with --replace"
            )
        for table in tables:
            tx.conn.execute(f'DELETE FROM "{table}"')
        for table in reversed(tables):
            _copy_table(source, tx, table)
        copied = contents(tx)
        if copied != expected:
            raise CopyMismatchError(expected, copied)
    return copied


def _copy_table(source: ChargebackDatabase, tx: Transaction, table: str) -> None:
    columns = source.dialect.columns(source.conn, table)
    names = ", ".join(f'"{column}"' for column in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    rows = source.conn.execute(f'SELECT {names} FROM "{table}"')
    for batch in _batches((_portable(row, table) for row in rows), BATCH_ROWS):
        tx.conn.executemany(insert, batch)
    tx.dialect.renumber_after(tx.conn, table)


def _portable(row: Sequence[Any], table: str) -> tuple[Any, ...]:
    """A row as either database takes it: an amount read from PostgreSQL (Decimal) as decimal text, which
    SQLite's STRICT TEXT columns require and PostgreSQL's NUMERIC columns accept."""
    return tuple(money_text(value, table) if isinstance(value, Decimal) else value for value in row)


def _batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while batch := list(islice(rows, size)):
        yield batch
