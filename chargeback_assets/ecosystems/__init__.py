"""The ecosystems a tenant's `ecosystem` key may name; adding one is an entry here and a package beside."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from chargeback_assets.ecosystems import confluent_cloud, generic_metrics, self_managed_kafka
from chargeback_assets.ecosystems.base import Ecosystem

ECOSYSTEMS: Mapping[str, Ecosystem] = MappingProxyType(
    {
        module.ECOSYSTEM.name: module.ECOSYSTEM
        for module in (confluent_cloud, self_managed_kafka, generic_metrics)
    }
)
