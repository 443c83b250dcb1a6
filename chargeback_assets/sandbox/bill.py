"""The organization's bill as served, with restatements: Confluent may revise a recent day's costs or
withdraw a day's bill, and a test may replace a day's rows with any JSON at all to see what a client makes
of it."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from threading import Lock
from typing import Any

from chargeback_assets.sandbox.organization import JsonObject

CENT4 = Decimal("0.0001")


def _day_key(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else date.fromisoformat(day).isoformat()


class Bill:
    """Cost rows by day; a revision multiplies one day's amounts of the original bill by a factor, and a
    replacement serves given rows in place of the day's (none: a bill withdrawn in full), until reverted."""

    def __init__(self, rows: list[JsonObject]) -> None:
        self._by_day: dict[str, list[JsonObject]] = {}
        for row in rows:
            self._by_day.setdefault(row["start_date"], []).append(row)
        self._factors: dict[str, Decimal] = {}
        self._replaced: dict[str, list[Any]] = {}
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
        if _day_key(day) not in self._by_day:
            raise ValueError(f"the sandbox bill has no costs on {_day_key(day)}")
        self.replace(day, [])

    def replace(self, day: date | str, rows: list[Any]) -> None:
        """Serve `rows` as they are whenever `day` is asked for, in place of its bill (and its revision).

        Nothing is checked: a row may be of any shape, dated another day, or repeated, which is the point.
        """
        if not isinstance(rows, list):
            raise ValueError(f"replacement rows must be a list, got {type(rows).__name__}")
        with self._lock:
            self._replaced[_day_key(day)] = list(rows)

    def revert(self, day: date | str) -> None:
        """Serve `day`'s original bill again: drops its revision and its replacement."""
        key = _day_key(day)
        with self._lock:
            self._factors.pop(key, None)
            self._replaced.pop(key, None)

    def rows(self, start: date, end: date) -> list[Any]:
        """The rows of the days start <= day < end, in date order, as currently served."""
        with self._lock:
            factors = dict(self._factors)
            replaced = dict(self._replaced)
        out: list[Any] = []
        days = {*self._by_day, *replaced}
        for key in sorted(k for k in days if start.isoformat() <= k < end.isoformat()):
            factor = factors.get(key)
            if key in replaced:
                out.extend(replaced[key])
            elif factor is None:
                out.extend(self._by_day[key])
            else:
                out.extend(_revised(r, factor) for r in self._by_day[key])
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
