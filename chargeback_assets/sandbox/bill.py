"""The organization's bill as served, with restatements: Confluent may revise a recent day's costs."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from threading import Lock

from chargeback_assets.sandbox.organization import JsonObject

CENT4 = Decimal("0.0001")


def _day_key(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else date.fromisoformat(day).isoformat()


class Bill:
    """Cost rows by day; a revision multiplies one day's amounts of the original bill by a factor, and an
    emptied day serves no rows at all (a bill withdrawn in full), until it is reverted."""

    def __init__(self, rows: list[JsonObject]) -> None:
        self._by_day: dict[str, list[JsonObject]] = {}
        for row in rows:
            self._by_day.setdefault(row["start_date"], []).append(row)
        self._factors: dict[str, Decimal] = {}
        self._emptied: set[str] = set()
        self._lock = Lock()

    def revise(self, day: date | str, factor: Decimal) -> None:
        """Restate `day` as its original amounts times `factor` (quantized); replaces earlier revisions."""
        key = _day_key(day)
        factor = Decimal(factor)
        if key not in self._by_day:
            raise ValueError(f"the sandbox bill has no costs on {key}")
        if not factor.is_finite() or factor <= 0:
            raise ValueError(f"revision factor must be a positive number, got {factor}")
        with self._lock:
            self._factors[key] = factor

    def empty(self, day: date | str) -> None:
        """Serve no cost rows for `day` until it is reverted."""
        key = _day_key(day)
        if key not in self._by_day:
            raise ValueError(f"the sandbox bill has no costs on {key}")
        with self._lock:
            self._emptied.add(key)

    def revert(self, day: date | str) -> None:
        key = _day_key(day)
        with self._lock:
            self._factors.pop(key, None)
            self._emptied.discard(key)

    def rows(self, start: date, end: date) -> list[JsonObject]:
        """Rows with start <= start_date < end, in date order, as currently served."""
        with self._lock:
            factors, emptied = dict(self._factors), set(self._emptied)
        out: list[JsonObject] = []
        for key in sorted(k for k in self._by_day if start.isoformat() <= k < end.isoformat()):
            if key in emptied:
                continue
            factor = factors.get(key)
            out.extend(
                self._by_day[key] if factor is None else [_revised(r, factor) for r in self._by_day[key]]
            )
        return out


def _revised(row: JsonObject, factor: Decimal) -> JsonObject:
    """Amount and original amount scale; the discount is their difference, so amount = original - discount."""
    amount = (Decimal(str(row["amount"])) * factor).quantize(CENT4, rounding=ROUND_HALF_UP)
    original = (Decimal(str(row["original_amount"])) * factor).quantize(CENT4, rounding=ROUND_HALF_UP)
    return {
        **row,
        "amount": float(amount),
        "original_amount": float(original),
        "discount_amount": float(original - amount),
    }
