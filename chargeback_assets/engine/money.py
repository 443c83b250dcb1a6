"""Exact money: quantization to 0.0001 and the splits that never lose or invent a ten-thousandth.

Every split here returns amounts that sum exactly to the quantized total. The remainder left by rounding is
walked out one quantum at a time from the first entry, so the caller controls who absorbs it by ordering
its entries (identity lists are sorted before even splits and before usage splits alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

QUANTUM = Decimal("0.0001")
ZERO = Decimal("0.0000")


class MoneyError(ArithmeticError):
    """An amount could not be split exactly (a remainder that is not a multiple of the quantum)."""


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def quantize_line_total(amount: Decimal) -> Decimal:
    """A source's line total as money: `quantize`d, except an amount that cannot be held to 0.0001 (not
    finite, or beyond Decimal's 28 digits), which is returned as it is. Such an amount is no money: the
    billing stage marks its line malformed (engine/bill_quality.py), so one absurd row costs its own day, not
    the whole bill with a bare InvalidOperation."""
    try:
        return quantize(amount)
    except InvalidOperation:
        return amount


def to_decimal(value: object) -> Decimal:
    """Parse a number without passing through binary floating point (floats go through `str`)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise MoneyError(f"not a number: {value!r}")
    try:
        return Decimal(str(value)) if isinstance(value, int | float | str) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MoneyError(f"not a number: {value!r}") from exc


def distribute_remainder(amounts: Sequence[Decimal], target: Decimal) -> list[Decimal]:
    """Adjust quantized `amounts` by ±0.0001 steps, round-robin from index 0, until they sum to `target`.

    The walk is bounded (at most twice the number of entries): a larger or fractional remainder means the
    inputs were not quantized, which is a bug upstream, not something to paper over.
    """
    result = list(amounts)
    diff = target - sum(result, ZERO)
    if diff == 0:
        return result
    steps, fraction = divmod(abs(diff), QUANTUM)
    if fraction != 0 or not result or steps > 2 * len(result):
        raise MoneyError(f"remainder {diff} did not converge over {len(result)} entries")
    step = QUANTUM if diff > 0 else -QUANTUM
    remaining = int(steps)
    index = 0
    progress_at_pass_start = remaining
    while remaining:
        position = index % len(result)
        candidate = result[position] + step
        # A share never changes sign: nobody is credited on a positive bill or charged on a credit.
        if (candidate >= 0) if target >= 0 else (candidate <= 0):
            result[position] = candidate
            remaining -= 1
        index += 1
        if index % len(result) == 0:
            if remaining == progress_at_pass_start:
                raise MoneyError(f"remainder {diff} did not converge over {len(result)} entries")
            progress_at_pass_start = remaining
    return result


def even_split(total: Decimal, count: int) -> list[Decimal]:
    """`count` equal shares of the quantized total; the leading entries absorb the rounding remainder."""
    if count <= 0:
        return []
    quantized_total = quantize(total)
    base = quantize(quantized_total / count)
    return distribute_remainder([base] * count, quantized_total)


def ratio_split(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Shares of the quantized total proportional to positive `weights` (which must not sum to zero)."""
    quantized_total = quantize(total)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        raise MoneyError("weights sum to zero")
    shares = [quantize(quantized_total * weight / weight_sum) for weight in weights]
    return distribute_remainder(shares, quantized_total)
