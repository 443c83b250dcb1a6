"""The generic metrics inventory: the configured cluster, and principals from the discovery query.

Principals are the distinct `identity_source.label` values of the discovery query over the last hour. If it
fails the gather is incomplete (nothing is marked deleted) and only the cluster and static identities are
yielded.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from chargeback_assets.ecosystems.base import InventoryGather, MetricsSource, SourceError
from chargeback_assets.ecosystems.generic_metrics.cost_model import ECOSYSTEM
from chargeback_assets.ecosystems.generic_metrics.discovery import Clock, discover, label_values, utc_now
from chargeback_assets.ecosystems.generic_metrics.identities import gathered_identities
from chargeback_assets.ecosystems.generic_metrics.queries import discovery_query
from chargeback_assets.ecosystems.generic_metrics.settings import GenericMetricsSettings
from chargeback_assets.engine.models import Resource

CLUSTER = "cluster"
DISCOVERY_HOURS = 1


@dataclass(slots=True)
class GenericInventory:
    settings: GenericMetricsSettings
    metrics: MetricsSource
    tenant_id: str
    clock: Clock = field(default=utc_now)

    def gather(self) -> InventoryGather:
        settings = self.settings
        cluster = Resource(
            ecosystem=ECOSYSTEM,
            tenant_id=self.tenant_id,
            resource_id=settings.cluster_id,
            resource_type=CLUSTER,
            display_name=settings.display_name or settings.cluster_id,
        )
        gathered = InventoryGather(resources=[cluster], observed_types={CLUSTER})
        principals: Collection[str] | None = None
        query = discovery_query(settings.identity_source)
        if query is not None:
            try:
                rows = discover(self.metrics, query, DISCOVERY_HOURS, self.clock())
                principals = label_values(rows, settings.identity_source.label)
            except SourceError as error:
                gathered.errors.append(f"principal discovery failed: {error}")
        gathered.identities = gathered_identities(
            settings.identity_source, principals, ecosystem=ECOSYSTEM, tenant_id=self.tenant_id
        )
        return gathered
