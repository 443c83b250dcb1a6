"""The Confluent Cloud cost source: Billing API `Cost` rows -> billing lines.

No row is silently dropped or read as zero. A row that cannot be read (its shape, its date, or an amount
that is text, null, missing or not finite) becomes a `malformed_billing_<hash>` line that charges nothing
and keeps what the source said (engine/bill_quality.py), so its day is held back until the row parses. A row
the API repeats with the same `id` (pages that overlap) is charged once, and the line counts the copies in
`metadata.duplicate_rows`; two rows sharing an `id` with different contents are both malformed, since we
cannot tell which is the bill. Ids made for rows without a resource are hashes of the row's content
(DESIGN.md §3.3), so re-fetching a window in another order or with other neighbours gives the same lines;
the hash leaves out what the row charges, so a restated amount keeps its line (`unresolved_resource_id`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

from chargeback_assets.ecosystems.confluent_cloud.client import CCloudClient
from chargeback_assets.engine.bill_quality import DUPLICATE_ROWS, PARSE_ERROR, RAW_AMOUNT, ROW_ID
from chargeback_assets.engine.bill_quality import MALFORMED as MALFORMED_KEY
from chargeback_assets.engine.models import BillingLine, day_start
from chargeback_assets.engine.money import quantize_line_total

log = logging.getLogger(__name__)

ECOSYSTEM = "confluent_cloud"
COSTS_PATH = "/billing/v1/costs"
MALFORMED = "MALFORMED"
ZERO = Decimal(0)

_OPTIONAL_TEXT_FIELDS = ("network_access_type", "description", "unit")
_SUMMED_AMOUNT_FIELDS = ("original_amount", "discount_amount")
_CHARGED_FIELDS = ("amount", "quantity", "price", *_SUMMED_AMOUNT_FIELDS)
"""What a row charges, as against what it describes: the fields a restated bill changes."""


def billing_windows(start: date, end: date, days_per_query: int) -> list[tuple[date, date]]:
    """Consecutive `[s, min(s + days_per_query, end))` windows covering `[start, end)`."""
    if days_per_query < 1:
        raise ValueError(f"days_per_query must be at least 1, got {days_per_query}")
    windows = []
    cursor = start
    while cursor < end:
        upper = min(cursor + timedelta(days=days_per_query), end)
        windows.append((cursor, upper))
        cursor = upper
    return windows


def canonical_json(row: Any) -> str:
    """The row as JSON with sorted keys and no spaces: equal rows give equal text wherever keys moved."""
    return _CANONICAL.encode(row)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
"""One encoder for every row: `json.dumps` with options builds a new one on each call."""


def row_hash(row: Any) -> str:
    """First 12 hex digits of the sha256 of the row's canonical JSON: stable when rows or keys move."""
    return hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()[:12]


_HELD = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def unresolved_resource_id(row: Mapping[str, Any]) -> str:
    """The resource id of a row that names no resource (support, audit log reads): a hash of what the row
    describes, its id included, leaving out what it charges.

    Hashing the whole row gave a restated amount a new id, so every revision of the bill made the line
    anew: new resolutions, ~4,000 new chargeback dimensions a day for the large sandbox organization (its
    org-wide lines are split across every identity), and a new series for each of them in Prometheus. Rows
    that differ only in what they charge are now price tiers of one line, as rows naming a resource are."""
    described = {name: value for name, value in row.items() if name not in _CHARGED_FIELDS}
    return f"unresolved_billing_{row_hash(described)}"


def _held(row: Any) -> bytes | str:
    """A row with an id as it waits for its copies: JSON with sorted keys, so equal rows give equal text
    wherever their keys moved. orjson writes it in a fifth of the standard encoder's time. A row it would
    not give back as decoded (NaN or an infinity, which it writes as null, an integer beyond 64 bits or a
    value JSON has no type for, which it refuses) is held as `canonical_json` text instead.

    The bytes are copied once: orjson's own buffer keeps room it did not use, which for a 30-day bill held
    ~12 MB more than the text (measured on 20,000 rows)."""
    try:
        held = orjson.dumps(row, option=_HELD)
    except orjson.JSONEncodeError:
        return canonical_json(row)
    return canonical_json(row) if b"null" in held else bytes(memoryview(held))


def _released(held: bytes | str) -> Any:
    return orjson.loads(held) if isinstance(held, bytes) else json.loads(held)


class MalformedRow(ValueError):
    """A row whose shape prevents a normal billing line; the message becomes `metadata.parse_error`."""


def _number(value: Any) -> Decimal | None:
    """`Decimal(str(v))` of a number or numeric text; None for null, booleans and anything else.

    Exact types, as JSON decodes them (a bool is not an int here); the text of a float is its `repr`."""
    kind = type(value)
    if kind is not float and kind is not str and kind is not int:
        return None
    try:
        return Decimal(repr(value) if kind is float else value)
    except (InvalidOperation, ValueError):
        return None


def _decimal(value: Any, field_name: str, row: Mapping[str, Any], digest: str | None) -> tuple[Decimal, bool]:
    """A number that charges nobody (quantity, price, evidence amounts), or 0 with a warning when it is
    unreadable or not finite. The charged `amount` is never defaulted: see `_amount`."""
    parsed = _number(value)
    if parsed is None or not parsed.is_finite():
        log.warning("billing row %s: %s=%r is not a number; using 0", _label(row, digest), field_name, value)
        return ZERO, False
    return parsed, True


def _label(row: Mapping[str, Any], digest: str | None) -> str:
    """How a warning names a row: its id, else its digest (hashed only when a warning needs it)."""
    return str(row.get("id") or digest or row_hash(row))


def _amount(row: Mapping[str, Any]) -> Decimal:
    """The row's charged amount, exactly; a row whose amount cannot be read is malformed, never zero."""
    if "amount" not in row:
        raise MalformedRow("amount is missing")
    parsed = _number(row["amount"])
    if parsed is None:
        raise MalformedRow("amount is not a number")
    if not parsed.is_finite():
        raise MalformedRow("amount is not a finite number")
    return parsed


def _raw_text(value: Any) -> str:
    """A raw value as the API sent it (JSON), so null, "null" and a missing value stay distinguishable."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    return value if isinstance(value, str) and value else None


def _parse_day(value: Any) -> date:
    if not isinstance(value, str):
        raise MalformedRow(f"start_date is missing or not a string: {value!r}")
    try:
        return _strict_day(value)
    except ValueError:
        raise MalformedRow(f"start_date {value!r} is not a YYYY-MM-DD date") from None


@lru_cache(maxsize=4096)
def _strict_day(text: str) -> date:
    """`strptime`, once per distinct text: every row of a day's bill carries the same start_date."""
    return datetime.strptime(text, "%Y-%m-%d").date()


def _optional_object(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRow(f"{name} is not an object: {type(value).__name__}")
    return value


@dataclass(slots=True)
class _Row:
    """One Cost row read into line fields, amounts still unrounded so tiers sum exactly."""

    day: date
    env_id: str
    resource_id: str
    product_category: str
    product_type: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[date, str, str, str, str]:
        return (self.day, self.env_id, self.resource_id, self.product_type, self.product_category)


def _read_row(row: Any, undated_day: date) -> _Row:
    if not isinstance(row, dict):
        return _malformed({}, row_hash(row), f"row is not an object: {type(row).__name__}", undated_day)
    try:
        return _read_well_formed(row)
    except MalformedRow as problem:
        return _malformed(row, row_hash(row), str(problem), undated_day)


def _quantity_and_price(row: Mapping[str, Any], digest: str | None) -> tuple[Decimal, Decimal]:
    quantity, _ = _decimal(row.get("quantity"), "quantity", row, digest)
    price, _ = _decimal(row.get("price"), "price", row, digest)
    return quantity, price


def _row_id(row: Mapping[str, Any]) -> str | None:
    value = row.get("id")
    return value if isinstance(value, str) and value else None


def _read_well_formed(row: Mapping[str, Any]) -> _Row:
    resource = _optional_object(row, "resource")
    environment = _optional_object(resource, "environment")
    day = _parse_day(row.get("start_date"))
    product, line_type = _text(row, "product"), _text(row, "line_type")
    if product is None or line_type is None:
        raise MalformedRow("product or line_type is missing or not a string")
    resource_id = resource.get("id")
    if resource_id is not None and not isinstance(resource_id, str):
        raise MalformedRow(f"resource.id is not a string: {resource_id!r}")
    env_id = environment.get("id") or ""
    if not isinstance(env_id, str):
        raise MalformedRow(f"resource.environment.id is not a string: {env_id!r}")

    amount = _amount(row)
    quantity, price = _quantity_and_price(row, None)
    metadata: dict[str, Any] = {}
    if (row_id := _row_id(row)) is not None:
        metadata[ROW_ID] = row_id
    if isinstance(resource.get("display_name"), str):
        metadata["resource_name"] = resource["display_name"]
    for name in _SUMMED_AMOUNT_FIELDS:
        if row.get(name) is not None:
            value, ok = _decimal(row[name], name, row, None)
            if ok:
                metadata[name] = value
    for name in _OPTIONAL_TEXT_FIELDS:
        if (value := _text(row, name)) is not None:
            metadata[name] = value
    return _Row(
        day=day,
        env_id=env_id,
        resource_id=resource_id or unresolved_resource_id(row),
        product_category=product,
        product_type=line_type,
        quantity=quantity,
        unit_price=price,
        amount=amount,
        metadata=metadata,
    )


def _malformed(row: Mapping[str, Any], digest: str, problem: str, undated_day: date) -> _Row:
    """A row we cannot read is kept as evidence, charging nothing: dated by its own start_date when that
    parses, else by the first day of the window that returned it, so it lands in a partition, where it
    holds back that day's emission until the source sends a row that parses."""
    log.warning(
        "billing row %s is malformed (%s); kept as malformed_billing_%s, charging nothing",
        _row_id(row) or digest,
        problem,
        digest,
    )
    try:
        day = _parse_day(row.get("start_date"))
    except MalformedRow:
        day = undated_day
    quantity, price = _quantity_and_price(row, digest)
    metadata: dict[str, Any] = {MALFORMED_KEY: True, PARSE_ERROR: problem}
    if (row_id := _row_id(row)) is not None:
        metadata[ROW_ID] = row_id
    if "amount" in row:
        metadata[RAW_AMOUNT] = _raw_text(row["amount"])
    return _Row(
        day=day,
        env_id="",
        resource_id=f"malformed_billing_{digest}",
        product_category=_text(row, "product") or MALFORMED,
        product_type=_text(row, "line_type") or MALFORMED,
        quantity=quantity,
        unit_price=price,
        amount=ZERO,
        metadata=metadata,
    )


def _read_rows(fetched: Iterable[tuple[date, Any]]) -> Iterator[_Row]:
    """Each distinct row read once, with `fetched` pairing every row with the first day of its window.

    Rows sharing an `id` are one row served twice (pages or windows that overlap): it is read once and its
    copies counted. If their contents differ we cannot tell which is the bill, so every version is malformed.
    Rows without an id cannot be told apart from price tiers and are all read.

    Until every row is in, a row with an id is kept as its JSON text (`_held`), which also tells its copies
    apart, in a fraction of the decoded object's memory: a 30-day bill of a large organization would
    otherwise hold every page's objects at once. `fetched` may be a generator, so each page can go as soon
    as it is read.
    """
    by_id: dict[str, dict[bytes | str, tuple[date, int]]] = {}
    for undated_day, row in fetched:
        row_id = _row_id(row) if isinstance(row, dict) else None
        if row_id is None:
            yield _read_row(row, undated_day)
            continue
        versions = by_id.setdefault(row_id, {})
        held = _held(row)
        first_day, copies = versions.get(held, (undated_day, 0))
        versions[held] = (min(first_day, undated_day), copies + 1)
    for row_id, versions in by_id.items():
        for held, (undated_day, copies) in versions.items():
            row = _released(held)
            if len(versions) == 1:
                parsed = _read_row(row, undated_day)
            else:
                problem = f"row id {row_id} came back with {len(versions)} different contents"
                parsed = _malformed(row, row_hash(row), problem, undated_day)
            if copies > 1:
                log.warning("billing row %s came back %d times; charged once", row_id, copies)
                parsed.metadata[DUPLICATE_ROWS] = copies - 1
            yield parsed


def _merge_tiers(rows: list[_Row]) -> _Row:
    """Rows sharing the line key are price tiers of one line: amounts and quantities add up, the unit price
    loses its meaning (0), and the tiers are kept as evidence."""
    if len(rows) == 1:
        return rows[0]
    ordered = sorted(
        rows, key=lambda r: (r.unit_price, r.quantity, r.amount, sorted(map(str, r.metadata.items())))
    )
    shared = {
        k: v
        for k, v in ordered[0].metadata.items()
        if k not in (*_SUMMED_AMOUNT_FIELDS, DUPLICATE_ROWS) and all(r.metadata.get(k) == v for r in ordered)
    }
    for name in _SUMMED_AMOUNT_FIELDS:
        if all(name in r.metadata for r in ordered):
            shared[name] = sum((r.metadata[name] for r in ordered), ZERO)
    if duplicates := sum(r.metadata.get(DUPLICATE_ROWS, 0) for r in ordered):
        shared[DUPLICATE_ROWS] = duplicates
    shared["tiers"] = [_tier_evidence(r) for r in ordered]
    first = ordered[0]
    return _Row(
        day=first.day,
        env_id=first.env_id,
        resource_id=first.resource_id,
        product_category=first.product_category,
        product_type=first.product_type,
        quantity=sum((r.quantity for r in ordered), ZERO),
        unit_price=ZERO,
        amount=sum((r.amount for r in ordered), ZERO),
        metadata=shared,
    )


def _tier_evidence(row: _Row) -> dict[str, str]:
    evidence = {"price": str(row.unit_price), "quantity": str(row.quantity), "cost": str(row.amount)}
    if ROW_ID in row.metadata:
        evidence["id"] = row.metadata[ROW_ID]
    return evidence


def _to_line(row: _Row, tenant_id: str) -> BillingLine:
    total = quantize_line_total(row.amount)
    metadata = {k: str(v) if isinstance(v, Decimal) else v for k, v in row.metadata.items()}
    if total != row.amount:
        metadata[RAW_AMOUNT] = str(row.amount)
    return BillingLine(
        ecosystem=ECOSYSTEM,
        tenant_id=tenant_id,
        timestamp=day_start(row.day),
        resource_id=row.resource_id,
        product_category=row.product_category,
        product_type=row.product_type,
        quantity=row.quantity,
        unit_price=row.unit_price,
        total_cost=total,
        env_id=row.env_id,
        provider_prorated=True,
        metadata=metadata,
    )


def cost_rows_to_lines(rows: Iterable[Any], tenant_id: str, undated_day: date) -> list[BillingLine]:
    """Billing lines for raw Cost rows, tiers merged, sorted by line key (input order does not matter).

    `undated_day` dates malformed rows whose start_date is unusable: the first day they were requested for.
    """
    return _lines(((undated_day, row) for row in rows), tenant_id)


def _lines(fetched: Iterable[tuple[date, Any]], tenant_id: str) -> list[BillingLine]:
    grouped: dict[tuple[date, str, str, str, str], list[_Row]] = {}
    for parsed in _read_rows(fetched):
        grouped.setdefault(parsed.key, []).append(parsed)
    return [_to_line(_merge_tiers(grouped[key]), tenant_id) for key in sorted(grouped)]


class CCloudCostSource:
    """Billing lines from the Costs API, fetched in windows of at most `days_per_query` days."""

    def __init__(self, client: CCloudClient, tenant_id: str, days_per_query: int = 15) -> None:
        if days_per_query < 1:
            raise ValueError(f"days_per_query must be at least 1, got {days_per_query}")
        self.client = client
        self.tenant_id = tenant_id
        self.days_per_query = days_per_query

    def gather(self, start: date, end: date) -> list[BillingLine]:
        """The lines of the rows the API returned for `[start, end)`, each on its own start_date, a row
        served by two windows read once; raises CCloudApiError if any window fails. A row dated outside
        `[start, end)` is returned too: the billing stage reports it as a stray."""
        return _lines(self._fetched(start, end), self.tenant_id)

    def fetch_rows(self, start: date, end: date) -> FetchedRows:
        """The rows of `[start, end)` as the API returned them, to be read into lines only for the days that
        need it (`FetchedRows`). Raises CCloudApiError if any window fails, as `gather` does."""
        return FetchedRows(self._fetched(start, end), self.tenant_id, start, end)

    def _fetched(self, start: date, end: date) -> Iterator[tuple[date, Any]]:
        for window_start, window_end in billing_windows(start, end, self.days_per_query):
            params = {"start_date": window_start.isoformat(), "end_date": window_end.isoformat()}
            for row in self.client.list(COSTS_PATH, params):
                yield window_start, row


class FetchedRows:
    """A fetched bill's rows, read into lines per day on demand, with a digest of each day's rows.

    The billing-change sensor fetches the whole recalculation window on every tick, and reading thousands of
    rows into lines was most of a tick. When the rows split exactly by day, a day's lines depend on its own
    rows alone, so a day whose rows have the digest they had at the last tick has the bill it had then. The
    split is exact when every row is an object dated, by a start_date that parses, inside the request, and no
    row id appears on two days (the reading of one day could then depend on another's). Otherwise
    `digests` is None and only the whole bill is read.

    Each row is kept as its JSON text (`_held`), which is also what its day's digest hashes: a long
    recalculation window of a large organization would otherwise hold every page's objects at once.
    """

    def __init__(self, fetched: Iterable[tuple[date, Any]], tenant_id: str, start: date, end: date) -> None:
        self._tenant_id = tenant_id
        # Per row: the first day of its window, the day it is dated (None: not an object dated inside the
        # request), and the row held.
        self._rows: list[tuple[date, date | None, bytes | str]] = []
        held_by_day: dict[date, list[bytes]] | None = {
            start + timedelta(days=offset): [] for offset in range((end - start).days)
        }
        day_of_id: dict[str, date] = {}
        for window_day, row in fetched:
            day, held = _day_within(row, start, end), _held(row)
            if held_by_day is not None:
                row_id = _row_id(row) if day is not None else None
                if day is None or (row_id is not None and day_of_id.setdefault(row_id, day) != day):
                    held_by_day = None
                else:
                    held_by_day[day].append(_as_bytes(held))
            self._rows.append((window_day, day, held))
        self.digests: dict[date, str] | None = (
            None if held_by_day is None else {day: _digest(held) for day, held in held_by_day.items()}
        )

    def lines(self, days: Iterable[date] | None = None) -> list[BillingLine]:
        """The lines of `days` (every row's when None), as `gather` reads them; `days` needs the split."""
        if days is None:
            return _lines(
                ((window_day, _released(held)) for window_day, _, held in self._rows), self._tenant_id
            )
        if self.digests is None:
            raise ValueError("these rows do not split by day: read them whole")
        wanted = set(days)
        return _lines(
            ((window_day, _released(held)) for window_day, day, held in self._rows if day in wanted),
            self._tenant_id,
        )


def _day_within(row: Any, start: date, end: date) -> date | None:
    """The day a row is dated, if it is an object with a start_date that parses inside `[start, end)`."""
    if not isinstance(row, dict):
        return None
    try:
        day = _parse_day(row.get("start_date"))
    except MalformedRow:
        return None
    return day if start <= day < end else None


def _digest(held: list[bytes]) -> str:
    """Order-independent: the day's rows' canonical JSON (`_held`), sorted, hashed."""
    digest = hashlib.sha256()
    for text in sorted(held):
        digest.update(text)
        digest.update(b"\n")
    return digest.hexdigest()


def _as_bytes(held: bytes | str) -> bytes:
    return held if isinstance(held, bytes) else held.encode("utf-8", "surrogatepass")
