"""Self-managed Kafka settings for tests, read through the real parser (the spec's scenario 25 cluster)."""

from __future__ import annotations

from typing import Any

from chargeback_assets.ecosystems.self_managed_kafka.settings import (
    SelfManagedKafkaSettings,
)
from chargeback_assets.validation import validate

CLUSTER_ID = "kafka-cluster-001"


def kafka_settings(url: str = "http://127.0.0.1:9", **overrides: Any) -> SelfManagedKafkaSettings:
    raw: dict[str, Any] = {
        "cluster_id": CLUSTER_ID,
        "broker_count": 3,
        "cost_model": {
            "compute_hourly_rate": "0.10",
            "storage_per_gib_hourly": "0.0001",
            "network_ingress_per_gib": "0.01",
            "network_egress_per_gib": "0.02",
        },
        "metrics": {"url": url},
    }
    raw.update(overrides)
    return validate(SelfManagedKafkaSettings, raw, at="plugin_settings")
