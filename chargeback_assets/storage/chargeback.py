"""The allocated chargeback: dimensions (who, what, how) and daily facts (when, how much).

This is the hot write path (tens of thousands of rows per tenant-day), so dimensions are resolved in
bulk: the tenant's known dimensions are loaded once into a dict, missing ones are inserted with one
`executemany` under ids taken after the current maximum (safe: the transaction holds the dimensions lock,
`Transaction.lock`, until it ends).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from chargeback_assets.engine.models import (
    PAYER_IDENTITY_TYPES,
    UNALLOCATED,
    ChargebackRow,
    CostType,
)
from chargeback_assets.engine.money import ZERO
from chargeback_assets.storage.billing import LineKey
from chargeback_assets.storage.codec import (
    day_bounds,
    decode_json,
    encode_json,
    money_text,
    parse_day,
    parse_timestamp,
    require_in_day,
    require_scope,
    timestamp_text,
)
from chargeback_assets.storage.database import Source, Transaction
from chargeback_assets.storage.dialect import Cursor, Dialect

_DIMENSION_COLUMNS = (
    "ecosystem, tenant_id, env_id, resource_id, product_category, product_type, identity_id, cost_type, "
    "allocation_method, allocation_detail"
)
_NULLABLE_DIMENSION_COLUMNS = ("resource_id", "allocation_method", "allocation_detail")
_COST_TYPE_OF = {c.value: c for c in CostType}
_MISSING = object()


class KnownDimensions:
    """The dimension ids of the last day a step wrote, so that its next day need not look them up.

    A tenant's days name mostly the same dimensions (its identities, resources and tiers), and looking up
    ten thousand of them was a fifth of writing a day. Only the last committed day's are kept: the next
    day names mostly those, and keeping every dimension a 30-day step met held ~30 MB for the rest of the
    run. Ids a write used are held apart until the caller says its transaction committed (`keep`): a
    rolled-back write's new ids never existed. Kept ids stay valid while their facts do; a step writes its
    days and deletes none of them, and retention removes only dimensions left without facts.
    """

    __slots__ = ("_kept", "_pending")

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], int] = {}
        self._pending: dict[tuple[Any, ...], int] = {}

    def known_of(self, wanted: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """The kept ids of `wanted`; a new write begins, so ids pending from one that failed are dropped."""
        self._pending = {}
        kept = self._kept
        return {dimension: known for dimension in wanted if (known := kept.get(dimension)) is not None}

    def hold(self, ids: dict[tuple[Any, ...], int]) -> None:
        """Every id the write used, kept ones included: what `keep` keeps for the next day."""
        self._pending = ids

    def keep(self) -> None:
        """The write that used the pending ids committed."""
        self._kept, self._pending = self._pending, {}


def replace_chargeback_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    rows: Sequence[ChargebackRow],
    known: KnownDimensions | None = None,
) -> int:
    """Replace the day's facts; returns the number of facts written.

    Rows sharing a dimension and timestamp are summed into one fact (a line split into several tiers can
    charge one identity twice: both amounts are owed). The fact keeps the metadata entries on which all
    its rows agree, so the result does not depend on the order of the rows. `known` carries dimension ids
    across the days of a step; call its `keep()` once the transaction committed. A dimension that only the
    replaced facts used goes with them (`drop_unused_dimensions`).

    Only what changed is written: a stored fact whose amount and metadata texts are unchanged stays as it
    is, a changed one is updated in place, and the rest are deleted or inserted. A recalculated day mostly
    repeats its stored facts: deleting and inserting all ~12,000 of a large day, with their three indexes,
    took 1.6 times as long for a revised day and three times as long for an unchanged one.
    """
    facts: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}
    timestamps: dict[datetime, str] = {}
    for row in rows:
        if row.ecosystem != ecosystem or row.tenant_id != tenant_id:
            require_scope(ecosystem, tenant_id, row.ecosystem, row.tenant_id, _describe(row))
        ts = timestamps.get(row.timestamp)
        if ts is None:
            require_in_day(row.timestamp, day, _describe(row))
            ts = timestamps[row.timestamp] = timestamp_text(row.timestamp, _describe(row))
        amount = row.amount
        if not isinstance(amount, Decimal) or not amount.is_finite():
            money_text(amount, f"{_describe(row)}: amount")
        key = (ts, row.dimension)
        fact = facts.get(key)
        if fact is None:
            facts[key] = [amount, row.metadata]
        else:
            fact[0] += amount
            fact[1] = _common(fact[1], row.metadata)
    wanted = [dimension for _, dimension in facts]
    before, stored = _stored_day(tx, ecosystem, tenant_id, day, wanted)
    replaced = {dimension_id for _, dimension_id in before}
    dimension_ids = _dimension_ids(tx, ecosystem, tenant_id, wanted, known, stored)
    metadata_text = _MetadataTexts()
    inserts, updates = [], []
    for (ts, dimension), (amount, metadata) in facts.items():
        dimension_id = dimension_ids[dimension]
        value = (format(amount, "f"), metadata_text(metadata, ts))
        stored_value = before.pop((ts, dimension_id), None)
        if stored_value is None:
            inserts.append((ecosystem, tenant_id, ts, dimension_id, *value))
        elif stored_value != value:
            updates.append((*value, ts, dimension_id))
    tx.conn.executemany("DELETE FROM chargeback_facts WHERE timestamp = ? AND dimension_id = ?", list(before))
    tx.conn.executemany(
        "UPDATE chargeback_facts SET amount = ?, metadata_json = ? WHERE timestamp = ? AND dimension_id = ?",
        updates,
    )
    tx.conn.executemany(
        "INSERT INTO chargeback_facts (ecosystem, tenant_id, timestamp, dimension_id, amount, metadata_json) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        inserts,
    )
    drop_unused_dimensions(tx, replaced.difference(dimension_ids[d] for d in wanted))
    return len(facts)


def dimensions_of_day(tx: Transaction, ecosystem: str, tenant_id: str, day: date) -> set[int]:
    """The ids of the dimensions the day's stored facts refer to."""
    start, end = day_bounds(day)
    return {
        dimension_id
        for (dimension_id,) in tx.conn.execute(
            "SELECT DISTINCT dimension_id FROM chargeback_facts "
            "WHERE ecosystem = ? AND tenant_id = ? AND timestamp >= ? AND timestamp < ?",
            (ecosystem, tenant_id, start, end),
        )
    }


def _stored_day(
    tx: Transaction, ecosystem: str, tenant_id: str, day: date, wanted: Sequence[tuple[Any, ...]]
) -> tuple[dict[tuple[str, int], tuple[str, str]], dict[tuple[Any, ...], int]]:
    """The day's stored facts, in one read: each fact's amount and metadata texts keyed by (timestamp,
    dimension id), and the ids of the dimensions in `wanted` that they name (keyed by `wanted`'s own tuples).
    A dimension's columns are compared and let go: keeping a large day's 12,000 of them, fresh strings each,
    raised a revision's peak RSS by ~20 MB."""
    own = {dimension: dimension for dimension in wanted}
    values: dict[tuple[str, int], tuple[str, str]] = {}
    stored: dict[tuple[Any, ...], int] = {}
    start, end = day_bounds(day)
    for row in tx.conn.execute(
        "SELECT f.timestamp, f.dimension_id, CAST(f.amount AS TEXT), f.metadata_json, "
        f"{', '.join(f'd.{c}' for c in _DIMENSION_COLUMNS.split(', '))} "
        "FROM chargeback_facts f JOIN chargeback_dimensions d ON d.dimension_id = f.dimension_id "
        "WHERE f.ecosystem = ? AND f.tenant_id = ? AND f.timestamp >= ? AND f.timestamp < ?",
        (ecosystem, tenant_id, start, end),
    ):
        values[row[0], row[1]] = row[2:4]
        if (dimension := own.get(row[4:])) is not None:
            stored[dimension] = row[1]
    return values, stored


_DIMENSIONS_PER_DELETE = 500


def drop_unused_dimensions(tx: Transaction, candidates: Collection[int]) -> int:
    """Delete the dimensions among `candidates` (those of facts just deleted) that no fact refers to any more;
    returns how many. Only the candidates are looked at: the tenant's whole history holds a hundred times
    more dimensions than a day's facts name, and a revised day would otherwise scan them all."""
    ordered = sorted(candidates)
    dropped = 0
    for start in range(0, len(ordered), _DIMENSIONS_PER_DELETE):
        chunk = ordered[start : start + _DIMENSIONS_PER_DELETE]
        cursor = tx.conn.execute(
            f"DELETE FROM chargeback_dimensions WHERE dimension_id IN ({', '.join('?' * len(chunk))}) "
            "AND NOT EXISTS (SELECT 1 FROM chargeback_facts f "
            "WHERE f.dimension_id = chargeback_dimensions.dimension_id)",
            chunk,
        )
        dropped += cursor.rowcount
    return dropped


class _MetadataTexts:
    """Each distinct fact metadata encoded once per day written.

    A day's tens of thousands of facts carry a few hundred distinct metadata mappings (the line's env_id
    and the tier that charged it), each in its own dict: keyed by their items, equal ones share one text.
    """

    def __init__(self) -> None:
        self._texts: dict[tuple[tuple[tuple[str, Any], ...], tuple[type, ...]], str] = {}

    def __call__(self, metadata: Mapping[str, Any], ts: str) -> str:
        if not metadata:
            return "{}"
        # The types too: 1, 1.0 and True are equal keys but different JSON.
        key = (tuple(metadata.items()), tuple(map(type, metadata.values())))
        try:
            text = self._texts.get(key)
        except TypeError:  # a value that cannot be hashed (a list): encoded on its own
            return encode_json(metadata, f"chargeback metadata at {ts}")
        if text is None:
            text = self._texts[key] = encode_json(metadata, f"chargeback metadata at {ts}")
        return text


def chargeback_rows_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[ChargebackRow]:
    """The day's facts as rows, ordered by timestamp then dimension, so that outputs are reproducible."""
    timestamp_of = cache(parse_timestamp)  # a day's facts share a handful of timestamps
    return [
        ChargebackRow(
            ecosystem=ecosystem,
            tenant_id=tenant_id,
            timestamp=timestamp_of(ts),
            env_id=env_id,
            resource_id=resource_id,
            product_category=product_category,
            product_type=product_type,
            identity_id=identity_id,
            cost_type=_cost_type(cost_type),
            allocation_method=allocation_method,
            allocation_detail=allocation_detail,
            amount=Decimal(amount),
            metadata=decode_json(metadata_json),
        )
        for (
            ts,
            env_id,
            resource_id,
            product_category,
            product_type,
            identity_id,
            cost_type,
            allocation_method,
            allocation_detail,
            amount,
            metadata_json,
        ) in _day_facts(
            source,
            ecosystem,
            tenant_id,
            day,
            "f.timestamp, d.env_id, d.resource_id, d.product_category, d.product_type, d.identity_id, "
            "d.cost_type, d.allocation_method, d.allocation_detail, f.amount, f.metadata_json",
        )
    ]


class ChargebackFact(NamedTuple):
    """A stored fact as emitters publish it: dimension and amount, without timestamp or metadata.

    The fields before `amount` are the dimension, in the order of `ChargebackRow.dimension`.
    """

    ecosystem: str
    tenant_id: str
    env_id: str
    resource_id: str | None
    product_category: str
    product_type: str
    identity_id: str
    cost_type: str
    allocation_method: str | None
    allocation_detail: str | None
    amount: Decimal


def chargeback_facts_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date
) -> list[ChargebackFact]:
    """The day's facts in the order of `chargeback_rows_for_day`, a fact per stored timestamp.

    Emitters read every fact of every emitted day; building a tuple per fact instead of a `ChargebackRow`
    with its parsed timestamp and decoded metadata halves that read on a large day.
    """
    return [
        ChargebackFact(
            ecosystem,
            tenant_id,
            env_id,
            resource_id,
            product_category,
            product_type,
            identity_id,
            cost_type,
            allocation_method,
            allocation_detail,
            Decimal(amount),
        )
        for (
            env_id,
            resource_id,
            product_category,
            product_type,
            identity_id,
            cost_type,
            allocation_method,
            allocation_detail,
            amount,
        ) in _day_facts(
            source,
            ecosystem,
            tenant_id,
            day,
            "d.env_id, d.resource_id, d.product_category, d.product_type, d.identity_id, d.cost_type, "
            "d.allocation_method, d.allocation_detail, f.amount",
        )
    ]


@dataclass(frozen=True, slots=True)
class DayTotals:
    """A day's facts summed per billing line, in all, and for UNALLOCATED."""

    by_line: dict[LineKey, Decimal]
    total: Decimal
    unallocated: Decimal
    facts: int


def day_totals(source: Source, ecosystem: str, tenant_id: str, day: date) -> DayTotals:
    """The day's facts summed exactly, per billing line: what reconciling a day with its bill needs.

    Read in one pass over the day's facts, unordered, without building a row per fact: both the
    reconciliation check and the unallocated share read every day of their run.
    """
    start, end = day_bounds(day)
    by_line: dict[LineKey, Decimal] = {}
    total = unallocated = ZERO
    facts = 0
    for ts, env_id, resource_id, product_type, product_category, identity_id, amount in source.conn.execute(
        "SELECT f.timestamp, d.env_id, d.resource_id, d.product_type, d.product_category, d.identity_id, "
        "f.amount FROM chargeback_facts f JOIN chargeback_dimensions d ON d.dimension_id = f.dimension_id "
        "WHERE f.ecosystem = ? AND f.tenant_id = ? AND f.timestamp >= ? AND f.timestamp < ?",
        (ecosystem, tenant_id, start, end),
    ):
        value = Decimal(amount)
        key = (ts, env_id, resource_id or "", product_type, product_category)
        by_line[key] = by_line.get(key, ZERO) + value
        total += value
        if identity_id == UNALLOCATED:
            unallocated += value
        facts += 1
    return DayTotals(by_line, total, unallocated, facts)


def identity_amounts_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date, identity_id: str
) -> list[Decimal]:
    """The amounts of the day's facts charged to one identity (UNALLOCATED, say), without reading the rest."""
    return _amounts_for_day(source, ecosystem, tenant_id, day, "d.identity_id = ?", (identity_id,))


def unattributed_amounts_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[Decimal]:
    """The amounts of the day's facts charged to no payer: to an id that is not a gathered identity of a
    `PAYER_IDENTITY_TYPES` type (a resource, a stand-in, UNALLOCATED, an API key), read without the rest."""
    payer_types = ", ".join("?" * len(PAYER_IDENTITY_TYPES))
    return _amounts_for_day(
        source,
        ecosystem,
        tenant_id,
        day,
        "d.identity_id NOT IN (SELECT identity_id FROM identities "
        f"WHERE ecosystem = ? AND tenant_id = ? AND identity_type IN ({payer_types}))",
        (ecosystem, tenant_id, *PAYER_IDENTITY_TYPES),
    )


def _amounts_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date, condition: str, params: tuple[str, ...]
) -> list[Decimal]:
    start, end = day_bounds(day)
    cursor = source.conn.execute(
        "SELECT f.amount FROM chargeback_facts f "
        "JOIN chargeback_dimensions d ON d.dimension_id = f.dimension_id "
        "WHERE f.ecosystem = ? AND f.tenant_id = ? AND f.timestamp >= ? AND f.timestamp < ? "
        f"AND {condition}",
        (ecosystem, tenant_id, start, end, *params),
    )
    return [Decimal(amount) for (amount,) in cursor]


def _day_facts(source: Source, ecosystem: str, tenant_id: str, day: date, columns: str) -> Cursor:
    start, end = day_bounds(day)
    return source.conn.execute(
        f"SELECT {columns} "
        "FROM chargeback_facts f JOIN chargeback_dimensions d ON d.dimension_id = f.dimension_id "
        "WHERE f.ecosystem = ? AND f.tenant_id = ? AND f.timestamp >= ? AND f.timestamp < ? "
        "ORDER BY f.timestamp, d.env_id, d.resource_id NULLS FIRST, d.product_category, d.product_type, "
        "d.identity_id, d.cost_type, d.allocation_method NULLS FIRST, d.allocation_detail NULLS FIRST",
        (ecosystem, tenant_id, start, end),
    )


def _cost_type(text: str) -> CostType:
    return _COST_TYPE_OF.get(text) or CostType(text)  # the enum's own lookup names a bad value


def chargeback_dates(source: Source, ecosystem: str, tenant_id: str, since: date | None = None) -> list[date]:
    """Every UTC day (on or after `since`) that has chargeback facts for the tenant, ascending."""
    start = day_bounds(since)[0] if since is not None else ""
    cursor = source.conn.execute(
        "SELECT DISTINCT substr(timestamp, 1, 10) FROM chargeback_facts "
        "WHERE ecosystem = ? AND tenant_id = ? AND timestamp >= ? ORDER BY 1",
        (ecosystem, tenant_id, start),
    )
    return [parse_day(text) for (text,) in cursor]


def _dimension_ids(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    dimensions: Sequence[tuple[Any, ...]],
    memo: KnownDimensions | None,
    stored: Mapping[tuple[Any, ...], int],
) -> dict[tuple[Any, ...], int]:
    """Get-or-create every dimension at once; new ones are numbered in order of first appearance.

    Only the day's dimensions are looked up (through a temporary table joined on the unique index), and
    only those neither `memo` nor the day's `stored` facts name: a tenant gathers dimensions for as long as
    it runs, and loading all of them for every day written made each write slower and larger than the last.
    A recalculated day names mostly the dimensions it named before.
    """
    wanted = list(dict.fromkeys(dimensions))
    known = memo.known_of(wanted) if memo is not None else {}
    for dimension in wanted:
        if dimension not in known and (stored_id := stored.get(dimension)) is not None:
            known[dimension] = stored_id
    unknown = [d for d in wanted if d not in known] if known else wanted
    fresh: dict[tuple[Any, ...], int] = {}
    if unknown and _has_dimensions(tx, ecosystem, tenant_id):  # none yet: a tenant's first day
        fresh = _known_dimension_ids(tx, ecosystem, tenant_id, unknown)
    missing = [d for d in unknown if d not in fresh]
    if missing:
        for dimension in missing:
            if dimension[7] not in _COST_TYPE_OF:
                raise ValueError(f"chargeback dimension {dimension!r}: unknown cost type {dimension[7]!r}")
        tx.lock("chargeback_dimensions")
        next_id = tx.conn.execute(
            "SELECT COALESCE(MAX(dimension_id), 0) + 1 FROM chargeback_dimensions"
        ).fetchone()[0]
        new = {dimension: next_id + i for i, dimension in enumerate(missing)}
        tx.conn.executemany(
            f"INSERT INTO chargeback_dimensions (dimension_id, {_DIMENSION_COLUMNS}) "
            f"VALUES ({', '.join('?' * 11)})",
            [(dimension_id, *dimension) for dimension, dimension_id in new.items()],
        )
        fresh.update(new)
    known.update(fresh)
    if memo is not None:
        memo.hold(known)
    return known


def _has_dimensions(tx: Transaction, ecosystem: str, tenant_id: str) -> bool:
    return (
        tx.conn.execute(
            "SELECT 1 FROM chargeback_dimensions WHERE ecosystem = ? AND tenant_id = ? LIMIT 1",
            (ecosystem, tenant_id),
        ).fetchone()
        is not None
    )


def _known_dimension_ids(
    tx: Transaction, ecosystem: str, tenant_id: str, wanted: list[tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """Ids of the wanted dimensions that exist, through a temporary table joined on the unique index."""
    tx.conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS wanted_dimensions (position BIGINT, "
        + ", ".join(f"{c} {tx.dialect.text}" for c in _DIMENSION_COLUMNS.split(", "))
        + ")"
    )
    tx.conn.execute("DELETE FROM wanted_dimensions")
    tx.conn.executemany(
        f"INSERT INTO wanted_dimensions (position, {_DIMENSION_COLUMNS}) VALUES ({', '.join('?' * 11)})",
        [(position, *dimension) for position, dimension in enumerate(wanted)],
    )
    tx.dialect.analyze(tx.conn, "wanted_dimensions")
    known = {
        wanted[position]: dimension_id
        for position, dimension_id in tx.conn.execute(
            "SELECT w.position, d.dimension_id FROM wanted_dimensions w "
            f"JOIN chargeback_dimensions d ON {_same_dimension(tx.dialect)} "
            "WHERE d.ecosystem = ? AND d.tenant_id = ?",
            (ecosystem, tenant_id),
        )
    }
    tx.conn.execute("DELETE FROM wanted_dimensions")
    return known


@cache
def _same_dimension(dialect: Dialect) -> str:
    """The join of a wanted dimension with a stored one, on the unique index's terms so that it can serve."""
    return " AND ".join(
        dialect.same(f"d.{c}", f"w.{c}") if c in _NULLABLE_DIMENSION_COLUMNS else f"d.{c} = w.{c}"
        for c in _DIMENSION_COLUMNS.split(", ")
    )


def _common(kept: Mapping[str, Any], other: Mapping[str, Any]) -> Mapping[str, Any]:
    if kept == other:
        return kept
    return {k: v for k, v in kept.items() if other.get(k, _MISSING) == v}


def _describe(row: ChargebackRow) -> str:
    return (
        f"chargeback row for {row.identity_id} on {row.resource_id or '<org>'}/{row.product_type} "
        f"at {row.timestamp.isoformat()}"
    )
