"""Self-managed Kafka as an ecosystem: its settings model and the runtime one tenant needs."""

from __future__ import annotations

from chargeback_assets.ecosystems.base import EcosystemRuntime
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.ecosystems.self_managed_kafka.billing import kafka_cost_source
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import ECOSYSTEM, PRODUCT_TYPES
from chargeback_assets.ecosystems.self_managed_kafka.handlers import KafkaHandler
from chargeback_assets.ecosystems.self_managed_kafka.inventory import KafkaInventory
from chargeback_assets.ecosystems.self_managed_kafka.settings import SERVICE_TYPES, SelfManagedKafkaSettings


class SelfManagedKafkaEcosystem:
    name = ECOSYSTEM
    settings = SelfManagedKafkaSettings
    service_types = SERVICE_TYPES

    def product_types(self, settings: SelfManagedKafkaSettings) -> frozenset[str]:
        return frozenset(PRODUCT_TYPES)

    def build(
        self, tenant_name: str, tenant_id: str, settings: SelfManagedKafkaSettings, budget: RetryBudget
    ) -> EcosystemRuntime:
        metrics = PrometheusMetricsSource(settings.metrics, tenant_name, budget=budget)
        return EcosystemRuntime(
            cost_source=kafka_cost_source(settings, metrics, tenant=tenant_name, tenant_id=tenant_id),
            inventory=KafkaInventory(settings, metrics, tenant_id),
            metrics=metrics,
            handlers=[KafkaHandler(settings, tenant_id)],
            fallback_allocator=None,
            budget=budget,
            metrics_step_seconds=settings.metrics_step_seconds,
            closers=[metrics.close],
        )
