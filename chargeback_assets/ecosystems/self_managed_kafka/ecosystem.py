"""Self-managed Kafka as an ecosystem: its settings parser and the runtime one tenant needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chargeback_assets.ecosystems.base import EcosystemRuntime
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.ecosystems.self_managed_kafka.billing import kafka_cost_source
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import ECOSYSTEM
from chargeback_assets.ecosystems.self_managed_kafka.handlers import KafkaHandler
from chargeback_assets.ecosystems.self_managed_kafka.inventory import KafkaInventory
from chargeback_assets.ecosystems.self_managed_kafka.settings import (
    SelfManagedKafkaSettings,
    parse_self_managed_kafka_settings,
)
from chargeback_assets.validation import ConfigError


class SelfManagedKafkaEcosystem:
    name = ECOSYSTEM

    def parse_settings(self, raw: Mapping[str, Any], path: str) -> SelfManagedKafkaSettings:
        return parse_self_managed_kafka_settings(raw, path)

    def build(
        self, tenant_name: str, tenant_id: str, settings: SelfManagedKafkaSettings, budget: RetryBudget
    ) -> EcosystemRuntime:
        if settings.resource_source.source != "prometheus":
            raise ConfigError(
                f"tenants.{tenant_name}.plugin_settings.resource_source.source",
                "only prometheus is supported: no Kafka admin client is available to this build",
            )
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
