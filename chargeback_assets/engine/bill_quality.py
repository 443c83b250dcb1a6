"""What a billing line says about its source row besides money: whether it could be read, which row it
came from, how many copies of that row the source sent.

Unreadable amounts are never zero. A source that cannot read a row's amount (text, null, missing, not
finite), or a line whose amount is beyond the tenant's `max_line_amount`, must neither guess a number nor
fail the whole bill. The line is kept with what the source said (`metadata.raw_amount`) and why it was
refused (`metadata.parse_error`), its `total_cost` is zero so no one is charged for it, and
`metadata.malformed` marks it: the `billing_well_formed` check names it, and the emitters hold back its
day until the source sends a line that parses.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from chargeback_assets.engine.models import BillingLine
from chargeback_assets.engine.money import ZERO

MALFORMED = "malformed"
PARSE_ERROR = "parse_error"
RAW_AMOUNT = "raw_amount"
"""The amount as the source gave it, when the line's total is not that (rounded, or refused)."""
ROW_ID = "row_id"
"""The source row's own id, where the source has one (Confluent's Cost `id`)."""
DUPLICATE_ROWS = "duplicate_rows"
"""Copies of the line's row the source sent besides the one charged (pages that overlap)."""


def is_malformed(line: BillingLine) -> bool:
    return bool(line.metadata.get(MALFORMED))


def duplicate_rows(line: BillingLine) -> int:
    return int(line.metadata.get(DUPLICATE_ROWS, 0))


def malformed(line: BillingLine, problem: str, raw_amount: str | None) -> BillingLine:
    """The line as evidence only: charged nothing, with the amount the source gave (None: none at all)."""
    metadata = {**line.metadata, MALFORMED: True, PARSE_ERROR: problem}
    if raw_amount is None:
        metadata.pop(RAW_AMOUNT, None)
    else:
        metadata[RAW_AMOUNT] = raw_amount
    return replace(line, total_cost=ZERO, metadata=metadata)


def screen_amount(line: BillingLine, max_amount: Decimal) -> BillingLine:
    """The line unchanged when its amount is money: finite and at most `max_amount` either way (credits are
    negative); otherwise malformed, so one absurd line holds back its own day and nothing else."""
    amount = line.total_cost
    if is_malformed(line):
        return line
    if not amount.is_finite():
        problem = "amount is not a finite number"
    elif abs(amount) > max_amount:
        problem = f"amount exceeds max_line_amount {max_amount}"
    else:
        return line
    return malformed(line, problem, str(line.metadata.get(RAW_AMOUNT, amount)))
