"""Generic metrics settings for tests, read through the real parser."""

from __future__ import annotations

from typing import Any

from chargeback_assets.ecosystems.generic_metrics.settings import (
    GenericMetricsSettings,
)
from chargeback_assets.validation import validate

CLUSTER_ID = "gm-cluster-1"
DISCOVERY = "group by (principal) (last_over_time(kafka_server_brokertopicmetrics_bytesin_total[$step]))"
STORED = "sum(kafka_log_log_size)"
MOVED_IN = "sum(increase(kafka_server_brokertopicmetrics_bytesin_total[$step]))"
OUT_BY_PRINCIPAL = "sum by (principal) (increase(kafka_server_brokertopicmetrics_bytesout_total[$step]))"


def fixed(name: str = "nodes", count: int = 3, rate: str = "2.50", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "product_category": "compute",
        "rate": rate,
        "cost_quantity": {"type": "fixed", "count": count},
    } | extra


def measured(name: str, kind: str, query: str, rate: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "product_category": "storage" if kind == "storage_gib" else "network",
        "rate": rate,
        "cost_quantity": {"type": kind, "query": query},
    } | extra


def usage_ratio(cost_type: dict[str, Any]) -> dict[str, Any]:
    return cost_type | {
        "allocation_strategy": "usage_ratio",
        "allocation_query": OUT_BY_PRINCIPAL,
        "allocation_label": "principal",
    }


def generic_settings(
    *cost_types: dict[str, Any], url: str = "http://127.0.0.1:9", **overrides: Any
) -> GenericMetricsSettings:
    raw: dict[str, Any] = {
        "cluster_id": CLUSTER_ID,
        "metrics": {"url": url},
        "identity_source": {"source": "prometheus", "discovery_query": DISCOVERY},
        "cost_types": list(cost_types) or [fixed()],
    }
    raw.update(overrides)
    return validate(GenericMetricsSettings, raw, at="plugin_settings")
