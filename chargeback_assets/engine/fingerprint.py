"""Content-derived identifiers: a billing line's id and a day's billing fingerprint.

Both are hashes of content, never of position, so re-fetching the same bill in another order yields the
same ids and the same fingerprint, and any change to an amount changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from chargeback_assets.engine.models import UTC, BillingLine


def line_id(line: BillingLine) -> str:
    """Stable id of a billing line: sha256 of its 7-field key (timestamp as fixed-width UTC text)."""
    key = [
        line.ecosystem,
        line.tenant_id,
        line.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        line.env_id,
        line.resource_id,
        line.product_type,
        line.product_category,
    ]
    return hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()


def billing_fingerprint(lines: Iterable[BillingLine]) -> str:
    """A hash of a day's bill: key, quantity, price and amount of every line, order-independent."""
    entries = sorted(
        [line_id(line), str(line.quantity), str(line.unit_price), str(line.total_cost)] for line in lines
    )
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
