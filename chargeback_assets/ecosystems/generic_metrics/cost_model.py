"""The generic metrics cost model: one day of metric rows -> one constructed billing line per cost type.

Pure: rows in, lines out, no I/O. Quantities: `fixed` is count × hours of the day, `storage_gib` the day's
mean sample in GiB × hours (0 without samples), `network_gib` the sum of the day's samples in GiB; the cost
is quantity × rate. A day is skipped (no lines) when the tenant has queried cost types and not one of them
returned a row: Prometheus knew nothing about that day. A tenant of fixed quantities only is never queried
and gets its lines every day. Rounding and proration: see `metering`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from chargeback_assets.ecosystems.generic_metrics.metering import (
    gib_hours,
    metered_line,
    total_gib,
    values_of,
    window_hours,
)
from chargeback_assets.ecosystems.generic_metrics.queries import cost_key
from chargeback_assets.ecosystems.generic_metrics.settings import GenericCostType, GenericMetricsSettings
from chargeback_assets.engine.models import BillingLine, MetricRow, Window

ECOSYSTEM = "generic_metrics"


def quantity(cost_type: GenericCostType, rows: Sequence[MetricRow], hours: Decimal) -> Decimal:
    measure = cost_type.cost_quantity
    if measure.type == "fixed":
        if measure.count is None:
            raise ValueError(f"cost type {cost_type.name!r}: a fixed quantity needs a count")
        return Decimal(measure.count) * hours
    samples = values_of(rows, cost_key(cost_type.name))
    return gib_hours(samples, hours) if measure.type == "storage_gib" else total_gib(samples)


def price_day(
    rows: Sequence[MetricRow], window: Window, settings: GenericMetricsSettings, tenant_id: str
) -> list[BillingLine]:
    queried = any(cost_type.cost_quantity.type != "fixed" for cost_type in settings.cost_types)
    if queried and not rows:
        return []
    hours = window_hours(window)
    return [
        metered_line(
            ecosystem=ECOSYSTEM,
            tenant_id=tenant_id,
            window=window,
            resource_id=settings.cluster_id,
            product_category=cost_type.product_category,
            product_type=cost_type.name,
            quantity=quantity(cost_type, rows, hours),
            unit_price=cost_type.rate,
            currency=settings.currency,
        )
        for cost_type in settings.cost_types
    ]
