"""The generic metrics product handler: one product type per configured cost type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from chargeback_assets.ecosystems.generic_metrics.chains import chain_for
from chargeback_assets.ecosystems.generic_metrics.cost_model import ECOSYSTEM
from chargeback_assets.ecosystems.generic_metrics.identities import resolve_identities
from chargeback_assets.ecosystems.generic_metrics.queries import allocation_query, discovery_query
from chargeback_assets.ecosystems.generic_metrics.settings import GenericCostType, GenericMetricsSettings
from chargeback_assets.engine.allocation import Allocator, Chain
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import BillingLine, IdentityResolution, MetricQuery, ResourceUsage


@dataclass(frozen=True, slots=True)
class GenericHandler:
    service_type: ClassVar[str] = "generic"

    settings: GenericMetricsSettings
    tenant_id: str
    _chains: Mapping[str, Chain] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        chains = {cost_type.name: chain_for(cost_type) for cost_type in self.settings.cost_types}
        object.__setattr__(self, "_chains", chains)

    @property
    def product_types(self) -> frozenset[str]:
        return frozenset(self._chains)

    def metric_queries(self, product_type: str) -> Sequence[MetricQuery]:
        """usage_ratio: its allocation query; even_split: the discovery query, so users of the day count."""
        cost_type = self._cost_type(product_type)
        query = (
            allocation_query(cost_type)
            if cost_type.allocation_strategy == "usage_ratio"
            else discovery_query(self.settings.identity_source)
        )
        return () if query is None else (query,)

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        return resolve_identities(
            usage, inventory, self.settings.identity_source, ecosystem=ECOSYSTEM, tenant_id=self.tenant_id
        )

    def allocator(self, product_type: str) -> Allocator:
        self._cost_type(product_type)
        return self._chains[product_type].allocate

    def _cost_type(self, product_type: str) -> GenericCostType:
        for cost_type in self.settings.cost_types:
            if cost_type.name == product_type:
                return cost_type
        raise ValueError(
            f"generic_metrics tenant {self.settings.cluster_id} has no cost type named {product_type!r}"
        )
