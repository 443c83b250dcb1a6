"""Validated `plugin_settings` of a self-managed Kafka tenant, priced by a YAML cost model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings, read_identity_source
from chargeback_assets.ecosystems.prometheus_settings import (
    PrometheusSettings,
    read_metrics_step,
    read_prometheus_settings,
)
from chargeback_assets.settings_reader import Section, defaults
from chargeback_assets.validation import ConfigError, Secret

SERVICE_TYPES = frozenset({"kafka"})
"""Keys `identity_resolution_overrides` may use for a self-managed Kafka tenant."""

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class CostRates:
    """Prices of one cluster: $ per broker-hour, per GiB-hour stored, per GiB in and per GiB out."""

    compute_hourly_rate: Decimal
    storage_per_gib_hourly: Decimal
    network_ingress_per_gib: Decimal
    network_egress_per_gib: Decimal


RATE_NAMES = tuple(item.name for item in dataclasses.fields(CostRates))


@dataclass(frozen=True, slots=True)
class CostModel:
    rates: CostRates
    region_overrides: Mapping[str, Mapping[str, Decimal]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def rates_for(self, region: str | None) -> CostRates:
        """The rates of `region`: its overrides replace the base rates field by field."""
        overrides = self.region_overrides.get(region, {}) if region is not None else {}
        return dataclasses.replace(self.rates, **overrides)


@dataclass(frozen=True, slots=True)
class ResourceSourceSettings:
    """Where brokers and topics come from: Prometheus labels, or the Kafka admin API."""

    source: Literal["prometheus", "admin_api"] = "prometheus"
    bootstrap_servers: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    security_protocol: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class SelfManagedKafkaSettings:
    cluster_id: str
    broker_count: int
    cost_model: CostModel
    metrics: PrometheusSettings
    region: str | None = None
    identity_source: IdentitySourceSettings = field(default_factory=IdentitySourceSettings)
    resource_source: ResourceSourceSettings = field(default_factory=ResourceSourceSettings)
    metrics_step_seconds: int = 3600
    discovery_window_hours: int = 1

    @property
    def rates(self) -> CostRates:
        return self.cost_model.rates_for(self.region)


def parse_self_managed_kafka_settings(raw: Mapping[str, Any], path: str) -> SelfManagedKafkaSettings:
    default = defaults(SelfManagedKafkaSettings)
    with Section(raw, path) as section:
        return SelfManagedKafkaSettings(
            cluster_id=section.string("cluster_id"),
            broker_count=section.integer("broker_count", ge=1),
            region=section.string("region", None),
            cost_model=_read_cost_model(section.section("cost_model", required=True)),
            identity_source=read_identity_source(
                section.section("identity_source"), with_discovery_query=False
            ),
            resource_source=_read_resource_source(section.section("resource_source")),
            metrics=read_prometheus_settings(section.section("metrics", required=True)),
            metrics_step_seconds=read_metrics_step(section, default["metrics_step_seconds"]),
            discovery_window_hours=section.integer(
                "discovery_window_hours", default["discovery_window_hours"], gt=0
            ),
        )


def _read_cost_model(section: Section) -> CostModel:
    """Rates are Decimal; quoting them in YAML ("0.10") keeps them exact, plain numbers are read via text."""
    with section:
        rates = CostRates(**{name: section.decimal(name, ge=0) for name in RATE_NAMES})
        overrides: dict[str, Mapping[str, Decimal]] = {}
        with section.section("region_overrides") as regions:
            for region in regions:
                with regions.section(region) as override:
                    given = {name: override.decimal(name, None, ge=0) for name in RATE_NAMES}
                    overrides[region] = MappingProxyType({k: v for k, v in given.items() if v is not None})
        return CostModel(rates=rates, region_overrides=MappingProxyType(overrides))


def _read_resource_source(section: Section) -> ResourceSourceSettings:
    default = defaults(ResourceSourceSettings)
    with section:
        settings = ResourceSourceSettings(
            source=section.string("source", default["source"], choices=("prometheus", "admin_api")),
            bootstrap_servers=section.string("bootstrap_servers", None),
            sasl_mechanism=section.string("sasl_mechanism", None, choices=SASL_MECHANISMS),
            sasl_username=section.string("sasl_username", None),
            sasl_password=section.secret("sasl_password", None),
            security_protocol=section.string(
                "security_protocol", default["security_protocol"], choices=SECURITY_PROTOCOLS
            ),
        )
    if settings.source == "admin_api" and settings.bootstrap_servers is None:
        raise ConfigError(section.at("bootstrap_servers"), "required when source is admin_api")
    if settings.security_protocol.startswith("SASL_"):
        for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
            if getattr(settings, name) is None:
                raise ConfigError(
                    section.at(name), f"required when security_protocol is {settings.security_protocol}"
                )
    return settings
