"""Validated `plugin_settings` of a generic metrics tenant: any system priced from Prometheus queries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings, read_identity_source
from chargeback_assets.ecosystems.prometheus_settings import (
    PrometheusSettings,
    read_metrics_step,
    read_prometheus_settings,
)
from chargeback_assets.settings_reader import Section, defaults, reject_duplicates, require_exactly
from chargeback_assets.validation import ConfigError

SERVICE_TYPES = frozenset({"generic"})
"""Keys `identity_resolution_overrides` may use for a generic metrics tenant."""

QuantityType = Literal["fixed", "storage_gib", "network_gib"]
QUANTITY_TYPES: tuple[QuantityType, ...] = ("fixed", "storage_gib", "network_gib")
AllocationStrategy = Literal["even_split", "usage_ratio"]


@dataclass(frozen=True, slots=True)
class CostQuantity:
    """How much of a cost type a day used: a fixed unit count per hour, or a query's GiB (stored or moved)."""

    type: QuantityType
    count: int | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class GenericCostType:
    """One priced product type; `name` is the billing line's product type."""

    name: str
    product_category: str
    rate: Decimal
    cost_quantity: CostQuantity
    allocation_strategy: AllocationStrategy = "even_split"
    allocation_query: str | None = None
    allocation_label: str | None = None


@dataclass(frozen=True, slots=True)
class GenericMetricsSettings:
    cluster_id: str
    metrics: PrometheusSettings
    cost_types: tuple[GenericCostType, ...]
    display_name: str | None = None
    identity_source: IdentitySourceSettings = field(default_factory=IdentitySourceSettings)
    metrics_step_seconds: int = 3600


def parse_generic_metrics_settings(raw: Mapping[str, Any], path: str) -> GenericMetricsSettings:
    with Section(raw, path) as section:
        cost_types = [(item, _read_cost_type(item)) for item in section.sections("cost_types")]
        if not cost_types:
            raise ConfigError(section.at("cost_types"), "at least one cost type is required")
        reject_duplicates(
            ((item.at("name"), cost_type.name) for item, cost_type in cost_types), "cost type name"
        )
        return GenericMetricsSettings(
            cluster_id=section.string("cluster_id"),
            display_name=section.string("display_name", None),
            metrics=read_prometheus_settings(section.section("metrics", required=True)),
            identity_source=read_identity_source(
                section.section("identity_source"), with_discovery_query=True
            ),
            cost_types=tuple(cost_type for _, cost_type in cost_types),
            metrics_step_seconds=read_metrics_step(
                section, defaults(GenericMetricsSettings)["metrics_step_seconds"]
            ),
        )


def _read_cost_type(section: Section) -> GenericCostType:
    with section:
        cost_type = GenericCostType(
            name=section.string("name"),
            product_category=section.string("product_category"),
            rate=section.decimal("rate", ge=0),
            cost_quantity=_read_cost_quantity(section.section("cost_quantity", required=True)),
            allocation_strategy=section.string(
                "allocation_strategy", "even_split", choices=("even_split", "usage_ratio")
            ),
            allocation_query=section.string("allocation_query", None),
            allocation_label=section.string("allocation_label", None),
        )
    require_exactly(
        section,
        {"allocation_query": cost_type.allocation_query, "allocation_label": cost_type.allocation_label},
        wanted=cost_type.allocation_strategy == "usage_ratio",
        condition=f"allocation_strategy is {cost_type.allocation_strategy}",
    )
    return cost_type


def _read_cost_quantity(section: Section) -> CostQuantity:
    with section:
        quantity = CostQuantity(
            type=section.string("type", choices=QUANTITY_TYPES),
            count=section.integer("count", None, gt=0),
            query=section.string("query", None),
        )
    fixed = quantity.type == "fixed"
    condition = f"type is {quantity.type}"
    require_exactly(section, {"count": quantity.count}, wanted=fixed, condition=condition)
    require_exactly(section, {"query": quantity.query}, wanted=not fixed, condition=condition)
    return quantity
