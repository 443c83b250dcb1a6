"""The self-managed Kafka cost source: the cluster's metrics, fetched by day and priced by the cost model."""

from __future__ import annotations

from functools import partial

from chargeback_assets.ecosystems.base import MetricsSource
from chargeback_assets.ecosystems.generic_metrics.metered_days import MeteredCostSource
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import ECOSYSTEM, price_day
from chargeback_assets.ecosystems.self_managed_kafka.queries import BILLING_QUERIES
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings


def kafka_cost_source(
    settings: SelfManagedKafkaSettings, metrics: MetricsSource, *, tenant: str, tenant_id: str
) -> MeteredCostSource:
    return MeteredCostSource(
        metrics=metrics,
        queries=BILLING_QUERIES,
        price_day=partial(price_day, settings=settings, tenant_id=tenant_id),
        step_seconds=settings.metrics_step_seconds,
        tenant=tenant,
        source=ECOSYSTEM,
    )
