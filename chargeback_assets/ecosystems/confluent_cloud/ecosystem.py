"""Confluent Cloud as an ecosystem: Billing API, inventory APIs, Prometheus metrics, product handlers."""

from __future__ import annotations

from chargeback_assets.ecosystems.base import EcosystemRuntime, TopicOverlay
from chargeback_assets.ecosystems.confluent_cloud.billing import CCloudCostSource
from chargeback_assets.ecosystems.confluent_cloud.chains import PRODUCTS, fallback_allocator
from chargeback_assets.ecosystems.confluent_cloud.client import CCloudClient
from chargeback_assets.ecosystems.confluent_cloud.handlers import confluent_cloud_handlers
from chargeback_assets.ecosystems.confluent_cloud.inventory import CCloudInventory
from chargeback_assets.ecosystems.confluent_cloud.queries import topic_queries
from chargeback_assets.ecosystems.confluent_cloud.settings import SERVICE_TYPES, ConfluentCloudSettings
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.retry import RetryBudget


class ConfluentCloudEcosystem:
    name = "confluent_cloud"
    settings = ConfluentCloudSettings
    service_types = SERVICE_TYPES

    def product_types(self, settings: ConfluentCloudSettings) -> frozenset[str]:
        return frozenset(PRODUCTS)

    def build(
        self, tenant_name: str, tenant_id: str, settings: ConfluentCloudSettings, budget: RetryBudget
    ) -> EcosystemRuntime:
        client = CCloudClient(
            settings.http, settings.api_key, settings.api_secret, tenant_name, budget=budget
        )
        metrics = (
            PrometheusMetricsSource(settings.metrics, tenant_name, budget=budget)
            if settings.metrics
            else None
        )
        closers = [client.close] + ([metrics.close] if metrics else [])
        overlay = settings.topic_attribution
        topics = (
            TopicOverlay(
                queries=topic_queries(overlay),
                mapping=overlay.mapping,
                excluded=overlay.excluded,
                missing_metrics_behavior=overlay.missing_metrics_behavior,
            )
            if overlay.enabled
            else None
        )
        return EcosystemRuntime(
            cost_source=CCloudCostSource(client, tenant_id, settings.days_per_query),
            inventory=CCloudInventory(client, tenant_id, settings.flink, settings.http),
            metrics=metrics,
            handlers=confluent_cloud_handlers(),
            fallback_allocator=fallback_allocator(),
            budget=budget,
            metrics_step_seconds=settings.metrics_step_seconds,
            topics=topics,
            closers=closers,
        )
