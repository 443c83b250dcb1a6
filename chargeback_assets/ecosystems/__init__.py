"""The settings parser of each ecosystem a tenant's `ecosystem` key may name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from chargeback_assets.ecosystems.confluent_cloud import settings as confluent_cloud_settings
from chargeback_assets.ecosystems.generic_metrics import settings as generic_metrics_settings
from chargeback_assets.ecosystems.self_managed_kafka import settings as self_managed_kafka_settings


@dataclass(frozen=True, slots=True)
class SettingsParser:
    """Validates `plugin_settings` (raw mapping, key path) and says which service types may be overridden."""

    parse: Callable[[Mapping[str, Any], str], Any]
    service_types: frozenset[str]


SETTINGS_PARSERS: Mapping[str, SettingsParser] = MappingProxyType(
    {
        "confluent_cloud": SettingsParser(
            confluent_cloud_settings.parse_confluent_cloud_settings, confluent_cloud_settings.SERVICE_TYPES
        ),
        "self_managed_kafka": SettingsParser(
            self_managed_kafka_settings.parse_self_managed_kafka_settings,
            self_managed_kafka_settings.SERVICE_TYPES,
        ),
        "generic_metrics": SettingsParser(
            generic_metrics_settings.parse_generic_metrics_settings, generic_metrics_settings.SERVICE_TYPES
        ),
    }
)
