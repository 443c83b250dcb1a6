"""The generic metrics cost source: each cost type's query, fetched by day and priced by the cost model."""

from __future__ import annotations

from functools import partial

from chargeback_assets.ecosystems.base import MetricsSource
from chargeback_assets.ecosystems.generic_metrics.cost_model import ECOSYSTEM, price_day
from chargeback_assets.ecosystems.generic_metrics.metered_days import MeteredCostSource
from chargeback_assets.ecosystems.generic_metrics.queries import cost_query
from chargeback_assets.ecosystems.generic_metrics.settings import GenericMetricsSettings


def generic_cost_source(
    settings: GenericMetricsSettings, metrics: MetricsSource, *, tenant: str, tenant_id: str
) -> MeteredCostSource:
    queries = [query for cost_type in settings.cost_types if (query := cost_query(cost_type)) is not None]
    return MeteredCostSource(
        metrics=metrics,
        queries=queries,
        price_day=partial(price_day, settings=settings, tenant_id=tenant_id),
        step_seconds=settings.metrics_step_seconds,
        tenant=tenant,
        source=ECOSYSTEM,
    )
