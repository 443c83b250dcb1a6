"""The self-managed Kafka inventory: the configured cluster, and brokers, topics and principals from metrics.

The cluster always comes from config. Brokers, topics and principals are the label values of the bytes-in
counter over the last `discovery_window_hours`. If that query fails the gather says so (it is incomplete,
so nothing is marked deleted) and only the cluster, plus any static identities, is yielded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chargeback_assets.ecosystems.base import InventoryGather, MetricsSource, SourceError
from chargeback_assets.ecosystems.generic_metrics.discovery import Clock, discover, label_values, utc_now
from chargeback_assets.ecosystems.generic_metrics.identities import gathered_identities
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import ECOSYSTEM
from chargeback_assets.ecosystems.self_managed_kafka.queries import DISCOVERY, PRINCIPAL_LABEL
from chargeback_assets.ecosystems.self_managed_kafka.settings import SelfManagedKafkaSettings
from chargeback_assets.engine.models import MetricRow, Resource

CLUSTER = "cluster"
BROKER = "broker"
TOPIC = "topic"


@dataclass(slots=True)
class KafkaInventory:
    settings: SelfManagedKafkaSettings
    metrics: MetricsSource
    tenant_id: str
    clock: Clock = field(default=utc_now)

    def gather(self) -> InventoryGather:
        settings = self.settings
        gathered = InventoryGather(resources=[self._cluster()], observed_types={CLUSTER})
        rows: list[MetricRow] | None = None
        try:
            rows = discover(self.metrics, DISCOVERY, settings.discovery_window_hours, self.clock())
        except SourceError as error:
            gathered.errors.append(f"broker, topic and principal discovery failed: {error}")
        if rows is not None:
            gathered.resources.extend(self._members(BROKER, sorted(label_values(rows, BROKER))))
            gathered.resources.extend(self._members(TOPIC, sorted(label_values(rows, TOPIC))))
            gathered.observed_types.update((BROKER, TOPIC))
        principals = None if rows is None else label_values(rows, PRINCIPAL_LABEL)
        gathered.identities = gathered_identities(
            settings.identity_source, principals, ecosystem=ECOSYSTEM, tenant_id=self.tenant_id
        )
        return gathered

    def _cluster(self) -> Resource:
        return Resource(
            ecosystem=ECOSYSTEM,
            tenant_id=self.tenant_id,
            resource_id=self.settings.cluster_id,
            resource_type=CLUSTER,
            display_name=self.settings.cluster_id,
            metadata={"broker_count": self.settings.broker_count, "region": self.settings.region},
        )

    def _members(self, resource_type: str, names: list[str]) -> list[Resource]:
        cluster_id = self.settings.cluster_id
        return [
            Resource(
                ecosystem=ECOSYSTEM,
                tenant_id=self.tenant_id,
                resource_id=f"{cluster_id}:{resource_type}:{name}",
                resource_type=resource_type,
                display_name=name,
                parent_id=cluster_id,
                metadata={"cluster_id": cluster_id},
            )
            for name in names
        ]
