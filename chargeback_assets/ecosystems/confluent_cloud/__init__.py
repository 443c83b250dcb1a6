"""Confluent Cloud: Billing API costs, REST inventory, Prometheus-held Telemetry metrics."""

from chargeback_assets.ecosystems.confluent_cloud.ecosystem import ConfluentCloudEcosystem

ECOSYSTEM = ConfluentCloudEcosystem()

__all__ = ["ECOSYSTEM"]
