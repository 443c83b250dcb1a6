"""Arithmetic shared by the cost models that price Prometheus metrics (generic_metrics, self_managed_kafka).

A metered day is a billing line we construct ourselves, so it is marked `provider_prorated=False`: if the
priced resource existed for part of the day, the engine charges the inactive share to the resource itself.
Its `total_cost` is quantized to 0.0001 (ROUND_HALF_UP) here, at construction, so that the chargeback rows
can sum to exactly the stored bill; the unrounded product `quantity × unit_price` is kept in metadata
`raw_total_cost` for audit. Metric values are floats from Prometheus and enter Decimal through `str`. A
total too large to hold to 0.0001 (an absurd metric) is left unrounded, and the billing stage marks its
line malformed against the tenant's `max_line_amount` rather than the whole request failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

from chargeback_assets.engine.models import BillingLine, MetricRow, Window
from chargeback_assets.engine.money import quantize_line_total, to_decimal

GIB = Decimal(2**30)
MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)


def window_hours(window: Window) -> Decimal:
    """The window's length in hours, exactly (24 for a day, not 24.0)."""
    microseconds = (window.end - window.start) // timedelta(microseconds=1)
    return Decimal(microseconds) / MICROSECONDS_PER_HOUR


def values_of(rows: Iterable[MetricRow], metric_key: str) -> list[Decimal]:
    return [to_decimal(row.value) for row in rows if row.metric_key == metric_key]


def gib_hours(samples: Sequence[Decimal], hours: Decimal) -> Decimal:
    """Mean stored bytes over the samples, in GiB, held for `hours` (0 without samples).

    The divisions come last so that whole-GiB samples give exact quantities (100/105/100 GiB × 24 h = 2440).
    """
    if not samples:
        return Decimal(0)
    return sum(samples, Decimal(0)) * hours / (len(samples) * GIB)


def total_gib(samples: Sequence[Decimal]) -> Decimal:
    """Transferred bytes summed over the window, in GiB."""
    return sum(samples, Decimal(0)) / GIB


def metered_line(
    *,
    ecosystem: str,
    tenant_id: str,
    window: Window,
    resource_id: str,
    product_category: str,
    product_type: str,
    quantity: Decimal,
    unit_price: Decimal,
    currency: str,
) -> BillingLine:
    """A daily line for one priced quantity, in the cost model's currency; see the module docstring for
    rounding and proration."""
    raw_total = quantity * unit_price
    return BillingLine(
        ecosystem=ecosystem,
        tenant_id=tenant_id,
        timestamp=window.start,
        resource_id=resource_id,
        product_category=product_category,
        product_type=product_type,
        quantity=quantity,
        unit_price=unit_price,
        total_cost=quantize_line_total(raw_total),
        currency=currency,
        granularity="daily",
        provider_prorated=False,
        metadata={"raw_total_cost": str(raw_total)},
    )
