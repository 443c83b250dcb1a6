"""The self-managed Kafka product handler: which metrics a line needs, who it can be charged to, and how."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from chargeback_assets.ecosystems.generic_metrics.identities import resolve_identities
from chargeback_assets.ecosystems.self_managed_kafka.chains import CHAINS
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import ECOSYSTEM, PRODUCT_TYPES
from chargeback_assets.ecosystems.self_managed_kafka.queries import USAGE_QUERIES
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings
from chargeback_assets.engine.allocation import Allocator
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import BillingLine, IdentityResolution, MetricQuery, ResourceUsage


@dataclass(frozen=True, slots=True)
class KafkaHandler:
    service_type: ClassVar[str] = "kafka"
    product_types: ClassVar[frozenset[str]] = frozenset(PRODUCT_TYPES)

    settings: SelfManagedKafkaSettings
    tenant_id: str

    def metric_queries(self, product_type: str) -> Sequence[MetricQuery]:
        """Bytes per principal for every product type; none when identities are only configured."""
        self._check(product_type)
        return USAGE_QUERIES if self.settings.identity_source.uses_prometheus else ()

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        return resolve_identities(
            usage, inventory, self.settings.identity_source, ecosystem=ECOSYSTEM, tenant_id=self.tenant_id
        )

    def allocator(self, product_type: str) -> Allocator:
        self._check(product_type)
        return CHAINS[product_type].allocate

    def _check(self, product_type: str) -> None:
        if product_type not in self.product_types:
            raise ValueError(
                f"self_managed_kafka handles {', '.join(PRODUCT_TYPES)}; not product type {product_type!r}"
            )
