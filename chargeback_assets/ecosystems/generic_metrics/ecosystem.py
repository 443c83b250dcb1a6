"""Generic metrics as an ecosystem: its settings model and the runtime one tenant needs."""

from __future__ import annotations

from chargeback_assets.ecosystems.base import EcosystemRuntime
from chargeback_assets.ecosystems.generic_metrics.billing import generic_cost_source
from chargeback_assets.ecosystems.generic_metrics.cost_model import ECOSYSTEM
from chargeback_assets.ecosystems.generic_metrics.handlers import GenericHandler
from chargeback_assets.ecosystems.generic_metrics.inventory import GenericInventory
from chargeback_assets.ecosystems.generic_metrics.settings import SERVICE_TYPES, GenericMetricsSettings
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.retry import RetryBudget


class GenericMetricsEcosystem:
    name = ECOSYSTEM
    settings = GenericMetricsSettings
    service_types = SERVICE_TYPES

    def product_types(self, settings: GenericMetricsSettings) -> frozenset[str]:
        """One product type per configured cost type."""
        return frozenset(cost_type.name for cost_type in settings.cost_types)

    def build(
        self, tenant_name: str, tenant_id: str, settings: GenericMetricsSettings, budget: RetryBudget
    ) -> EcosystemRuntime:
        metrics = PrometheusMetricsSource(settings.metrics, tenant_name, budget=budget)
        return EcosystemRuntime(
            cost_source=generic_cost_source(settings, metrics, tenant=tenant_name, tenant_id=tenant_id),
            inventory=GenericInventory(settings, metrics, tenant_id),
            metrics=metrics,
            handlers=[GenericHandler(settings, tenant_id)],
            fallback_allocator=None,
            budget=budget,
            metrics_step_seconds=settings.metrics_step_seconds,
            closers=[metrics.close],
        )
