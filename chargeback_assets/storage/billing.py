"""The tenant's bill, one day at a time, the stray lines reported with each day, and how often each line
has been tried by the allocator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from typing import NamedTuple

from chargeback_assets.engine.bill_quality import MALFORMED
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import BillingLine
from chargeback_assets.storage.codec import (
    day_bounds,
    day_text,
    decode_json,
    encode_json,
    money_text,
    parse_timestamp,
    require_in_day,
    require_scope,
    timestamp_text,
)
from chargeback_assets.storage.database import Source, Transaction, delete_day

_LINE_COLUMNS = (
    "timestamp, env_id, resource_id, product_type, product_category, quantity, unit_price, total_cost, "
    "currency, granularity, provider_prorated, metadata_json"
)
_DAY_ORDER = "ORDER BY timestamp, env_id, resource_id, product_type, product_category"


def replace_billing_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    lines: Sequence[BillingLine],
    strays: Sequence[BillingLine] = (),
) -> int:
    """Replace the day's bill, every line with no allocation attempts, and the stray lines reported with
    it; returns the number of lines written.

    A gathered day is allocated afresh from the bill just fetched, so a line that used up its attempts on
    an earlier gather gets its whole `allocation_retry_limit` again (core-engine-spec §1.2 B step 7), even
    when it comes back with the same key. Two lines with one key are refused: the source merges tiers.
    Strays are lines of other days that the source sent when asked for this one: kept as evidence under
    this day, charged to no day.
    """
    rows = {}
    for lid, line, values in _encoded(ecosystem, tenant_id, lines, "the bill for", day):
        require_in_day(line.timestamp, day, _describe(line))
        rows[lid] = (ecosystem, tenant_id, lid, *values, 0)
    stray_rows = [
        (ecosystem, tenant_id, day_text(day), lid, *values)
        for lid, _, values in _encoded(ecosystem, tenant_id, strays, "the strays reported with", day)
    ]
    delete_day(tx, "billing", ecosystem, tenant_id, day, timestamp_column="timestamp")
    delete_day(tx, "billing_strays", ecosystem, tenant_id, day)
    tx.conn.executemany(
        f"INSERT INTO billing (ecosystem, tenant_id, line_id, {_LINE_COLUMNS}, allocation_attempts) "
        f"VALUES ({', '.join('?' * 16)})",
        rows.values(),
    )
    tx.conn.executemany(
        f"INSERT INTO billing_strays (ecosystem, tenant_id, date, line_id, {_LINE_COLUMNS}) "
        f"VALUES ({', '.join('?' * 16)})",
        stray_rows,
    )
    return len(rows)


def _describe(line: BillingLine) -> str:
    return f"billing line {line.resource_id or '<org>'}/{line.product_type} at {line.timestamp.isoformat()}"


def _encoded(
    ecosystem: str, tenant_id: str, lines: Sequence[BillingLine], where: str, day: date
) -> Iterator[tuple[str, BillingLine, tuple[object, ...]]]:
    """(line id, line, its `_LINE_COLUMNS` values) of each line; a key given twice is refused."""
    seen: set[str] = set()
    for line in lines:
        what = _describe(line)
        require_scope(ecosystem, tenant_id, line.ecosystem, line.tenant_id, what)
        lid = line_id(line)
        if lid in seen:
            raise ValueError(f"{what} appears twice in {where} {day.isoformat()} (same 7-field key)")
        seen.add(lid)
        yield (
            lid,
            line,
            (
                timestamp_text(line.timestamp, what),
                line.env_id,
                line.resource_id,
                line.product_type,
                line.product_category,
                money_text(line.quantity, f"{what}: quantity"),
                money_text(line.unit_price, f"{what}: unit_price"),
                money_text(line.total_cost, f"{what}: total_cost"),
                line.currency,
                line.granularity,
                int(line.provider_prorated),
                encode_json(line.metadata, f"{what}: metadata"),
            ),
        )


def billing_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[BillingLine]:
    """The day's lines ordered by their key, so that every reader walks them in the same order."""
    return _lines(source, ecosystem, tenant_id, "billing", _in_day(day))


LineKey = tuple[str, str, str, str, str]
"""A billing line's key as stored, and as the chargeback facts carry it: timestamp text, env_id, resource_id
('' for none), product_type, product_category."""


class LineTotal(NamedTuple):
    """A billing line as reconciling sees it: its key and what it bills."""

    key: LineKey
    total_cost: Decimal
    currency: str

    @property
    def product_type(self) -> str:
        return self.key[3]

    @property
    def resource_id(self) -> str:
        return self.key[2]


def line_totals_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[LineTotal]:
    """The day's lines as key and cost only, in `billing_for_day`'s order: the checks read every day of
    their run, and building whole lines (metadata, quantity, price) was most of what they read."""
    where, params = _in_day(day)
    cursor = source.conn.execute(
        "SELECT timestamp, env_id, resource_id, product_type, product_category, total_cost, currency "
        f"FROM billing WHERE ecosystem = ? AND tenant_id = ? AND {where} " + _DAY_ORDER,
        (ecosystem, tenant_id, *params),
    )
    return [
        LineTotal((ts, env_id, resource_id or "", product_type, product_category), Decimal(cost), currency)
        for ts, env_id, resource_id, product_type, product_category, cost, currency in cursor
    ]


def malformed_billing_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[BillingLine]:
    """The day's malformed lines (engine/bill_quality.py), found without reading the others."""
    where, params = _in_day(day)
    return _lines(
        source,
        ecosystem,
        tenant_id,
        "billing",
        (f"{where} AND {source.dialect.json_flag('metadata_json', MALFORMED)}", params),
    )


def billing_strays_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[BillingLine]:
    """The stray lines reported with the day (see `replace_billing_day`), each on its own date."""
    return _lines(source, ecosystem, tenant_id, "billing_strays", ("date = ?", (day_text(day),)))


def billing_currencies(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[str]:
    """The currencies the day's lines are billed in, sorted (one, unless a bill mixes them)."""
    where, params = _in_day(day)
    cursor = source.conn.execute(
        f"SELECT DISTINCT currency FROM billing WHERE ecosystem = ? AND tenant_id = ? AND {where} "
        "ORDER BY currency",
        (ecosystem, tenant_id, *params),
    )
    return [currency for (currency,) in cursor]


def _in_day(day: date) -> tuple[str, tuple[str, ...]]:
    return "timestamp >= ? AND timestamp < ?", day_bounds(day)


def _lines(
    source: Source, ecosystem: str, tenant_id: str, table: str, where: tuple[str, tuple[str, ...]]
) -> list[BillingLine]:
    condition, params = where
    timestamp_of = cache(parse_timestamp)  # a day's lines share a handful of timestamps
    cursor = source.conn.execute(
        f"SELECT {_LINE_COLUMNS} FROM {table} WHERE ecosystem = ? AND tenant_id = ? AND {condition} "
        + _DAY_ORDER,
        (ecosystem, tenant_id, *params),
    )
    return [
        BillingLine(
            ecosystem=ecosystem,
            tenant_id=tenant_id,
            timestamp=timestamp_of(ts),
            env_id=env_id,
            resource_id=resource_id,
            product_type=product_type,
            product_category=product_category,
            quantity=Decimal(quantity),
            unit_price=Decimal(unit_price),
            total_cost=Decimal(total_cost),
            currency=currency,
            granularity=granularity,
            provider_prorated=bool(prorated),
            metadata=decode_json(metadata_json),
        )
        for (
            ts,
            env_id,
            resource_id,
            product_type,
            product_category,
            quantity,
            unit_price,
            total_cost,
            currency,
            granularity,
            prorated,
            metadata_json,
        ) in cursor
    ]


ATTEMPT_COUNTERS = ("allocation_attempts", "topic_attribution_attempts")
"""The per-line retry counters: the chargeback allocation's and the topic attribution's."""


def _counter(name: str) -> str:
    if name not in ATTEMPT_COUNTERS:
        raise ValueError(f"unknown attempt counter {name!r}; known: {ATTEMPT_COUNTERS}")
    return name


def allocation_attempts(
    source: Source, ecosystem: str, tenant_id: str, day: date, counter: str = "allocation_attempts"
) -> dict[str, int]:
    """line_id -> how many times the allocator (or the topic attribution: `counter`) has tried that line."""
    start, end = day_bounds(day)
    return dict(
        source.conn.execute(
            f"SELECT line_id, {_counter(counter)} FROM billing "
            "WHERE ecosystem = ? AND tenant_id = ? AND timestamp >= ? AND timestamp < ? ORDER BY line_id",
            (ecosystem, tenant_id, start, end),
        )
    )


def increment_allocation_attempts(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    failed: Mapping[str, int],
    counter: str = "allocation_attempts",
) -> dict[str, int]:
    """Add each line's failed attempts (line id -> count) to its stored `counter`; returns the new counts.

    Unknown line ids are refused.
    """
    column = _counter(counter)
    wanted = sorted(failed)
    tx.conn.executemany(
        f"UPDATE billing SET {column} = {column} + ? WHERE ecosystem = ? AND tenant_id = ? AND line_id = ?",
        [(failed[lid], ecosystem, tenant_id, lid) for lid in wanted],
    )
    counts = {}
    for lid in wanted:
        found = tx.conn.execute(
            f"SELECT {column} FROM billing WHERE ecosystem = ? AND tenant_id = ? AND line_id = ?",
            (ecosystem, tenant_id, lid),
        ).fetchone()
        if found is None:
            raise ValueError(f"no billing line {lid} for tenant ({ecosystem!r}, {tenant_id!r})")
        counts[lid] = found[0]
    return counts
