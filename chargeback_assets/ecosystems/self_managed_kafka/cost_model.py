"""The self-managed Kafka cost model: one day of cluster metrics -> four constructed billing lines.

Pure: rows in, lines out, no I/O. Compute is priced per broker-hour, storage per GiB-hour of the day's mean
log size, network per GiB moved in or out. Rates are the cost model's, with the cluster region's overrides
applied field by field. A day without a single metric row is skipped (no lines): it is a day Prometheus
knows nothing about, not a day of zero traffic. Rounding and proration: see `generic_metrics.metering`.
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
from chargeback_assets.ecosystems.self_managed_kafka.queries import (
    CLUSTER_BYTES_IN,
    CLUSTER_BYTES_OUT,
    CLUSTER_STORAGE_BYTES,
)
from chargeback_assets.ecosystems.self_managed_kafka.settings import CostRates, SelfManagedKafkaSettings
from chargeback_assets.engine.models import BillingLine, MetricRow, Window

ECOSYSTEM = "self_managed_kafka"
PRODUCT_CATEGORY = "kafka"
COMPUTE = "SELF_KAFKA_COMPUTE"
STORAGE = "SELF_KAFKA_STORAGE"
NETWORK_INGRESS = "SELF_KAFKA_NETWORK_INGRESS"
NETWORK_EGRESS = "SELF_KAFKA_NETWORK_EGRESS"
PRODUCT_TYPES = (COMPUTE, STORAGE, NETWORK_INGRESS, NETWORK_EGRESS)


def day_quantities(
    rows: Sequence[MetricRow], window: Window, broker_count: int, rates: CostRates
) -> list[tuple[str, Decimal, Decimal]]:
    """(product type, quantity, unit price) of each line of the day."""
    hours = window_hours(window)
    return [
        (COMPUTE, broker_count * hours, rates.compute_hourly_rate),
        (STORAGE, gib_hours(values_of(rows, CLUSTER_STORAGE_BYTES.key), hours), rates.storage_per_gib_hourly),
        (NETWORK_INGRESS, total_gib(values_of(rows, CLUSTER_BYTES_IN.key)), rates.network_ingress_per_gib),
        (NETWORK_EGRESS, total_gib(values_of(rows, CLUSTER_BYTES_OUT.key)), rates.network_egress_per_gib),
    ]


def price_day(
    rows: Sequence[MetricRow], window: Window, settings: SelfManagedKafkaSettings, tenant_id: str
) -> list[BillingLine]:
    if not rows:
        return []
    return [
        metered_line(
            ecosystem=ECOSYSTEM,
            tenant_id=tenant_id,
            window=window,
            resource_id=settings.cluster_id,
            product_category=PRODUCT_CATEGORY,
            product_type=product_type,
            quantity=quantity,
            unit_price=unit_price,
            currency=settings.cost_model.currency,
        )
        for product_type, quantity, unit_price in day_quantities(
            rows, window, settings.broker_count, settings.rates
        )
    ]
