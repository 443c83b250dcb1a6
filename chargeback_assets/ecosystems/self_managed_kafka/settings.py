"""`plugin_settings` of a self-managed Kafka tenant, priced by a YAML cost model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings
from chargeback_assets.ecosystems.prometheus_settings import MetricsStep, PrometheusSettings
from chargeback_assets.engine.models import DEFAULT_CURRENCY
from chargeback_assets.validation import Currency, Exact, Integer, Invalid, Text, settings

SERVICE_TYPES = frozenset({"kafka"})
"""Keys `identity_resolution_overrides` may use for a self-managed Kafka tenant."""

Rate = Annotated[Exact, Field(ge=0)]


@settings
class CostRates:
    """Prices of one cluster: $ per broker-hour, per GiB-hour stored, per GiB in and per GiB out."""

    compute_hourly_rate: Rate
    storage_per_gib_hourly: Rate
    network_ingress_per_gib: Rate
    network_egress_per_gib: Rate


@settings
class RateOverrides:
    """Any of the four rates, for one region."""

    compute_hourly_rate: Rate | None = None
    storage_per_gib_hourly: Rate | None = None
    network_ingress_per_gib: Rate | None = None
    network_egress_per_gib: Rate | None = None


@settings
class CostModel(CostRates):
    """Rates are Decimal; quoting them in YAML ("0.10") keeps them exact, plain numbers are read via text."""

    region_overrides: Mapping[str, RateOverrides] = field(default_factory=lambda: MappingProxyType({}))
    currency: Currency = DEFAULT_CURRENCY
    """What the rates are in; every line priced with them is billed in it."""

    def rates_for(self, region: str | None) -> CostRates:
        """The rates of `region`: its overrides replace the base rates field by field."""
        rates = {item.name: getattr(self, item.name) for item in dataclasses.fields(CostRates)}
        override = self.region_overrides.get(region) if region is not None else None
        if override is not None:
            rates.update({k: v for k, v in dataclasses.asdict(override).items() if v is not None})
        return CostRates(**rates)


@settings
class ResourceSourceSettings:
    """Where brokers and topics come from: Prometheus labels (the Kafka admin API is not in this build)."""

    source: Literal["prometheus"] = "prometheus"

    @field_validator("source", mode="before")
    @classmethod
    def _no_admin_api(cls, value: Any) -> Any:
        if value == "admin_api":
            raise Invalid(
                "admin_api is not available in this build (it has no Kafka admin client); use source: "
                "prometheus, which finds brokers and topics from the metrics' labels"
            )
        return value


@settings(kw_only=True)
class SelfManagedKafkaSettings:
    cluster_id: Text
    broker_count: Annotated[Integer, Field(ge=1)]
    cost_model: CostModel
    metrics: PrometheusSettings
    region: Text | None = None
    identity_source: IdentitySourceSettings = field(default_factory=IdentitySourceSettings)
    resource_source: ResourceSourceSettings = field(default_factory=ResourceSourceSettings)
    metrics_step_seconds: MetricsStep = 3600
    discovery_window_hours: Annotated[Integer, Field(gt=0)] = 1

    @property
    def rates(self) -> CostRates:
        return self.cost_model.rates_for(self.region)
