"""Self-managed Kafka, priced by a YAML cost model from its own Prometheus metrics."""

from chargeback_assets.ecosystems.self_managed_kafka.ecosystem import SelfManagedKafkaEcosystem

ECOSYSTEM = SelfManagedKafkaEcosystem()

__all__ = ["ECOSYSTEM"]
