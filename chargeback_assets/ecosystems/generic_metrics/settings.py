"""`plugin_settings` of a generic metrics tenant: any system priced from Prometheus queries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chargeback_assets.ecosystems.identity_source_settings import DiscoveredIdentitySource
from chargeback_assets.ecosystems.prometheus_settings import MetricsStep, PrometheusSettings
from chargeback_assets.engine.models import DEFAULT_CURRENCY
from chargeback_assets.validation import Currency, Exact, Integer, Text, only_when, settings, unique_by

SERVICE_TYPES = frozenset({"generic"})
"""Keys `identity_resolution_overrides` may use for a generic metrics tenant."""

QuantityType = Literal["fixed", "storage_gib", "network_gib"]
AllocationStrategy = Literal["even_split", "usage_ratio"]


@settings
class CostQuantity:
    """How much of a cost type a day used: a fixed unit count per hour, or a query's GiB (stored or moved)."""

    type: QuantityType
    count: Annotated[Integer, Field(gt=0)] | None = None
    query: Text | None = None

    _count_or_query = only_when("type", count=("fixed",), query=("storage_gib", "network_gib"))


@settings
class GenericCostType:
    """One priced product type; `name` is the billing line's product type."""

    name: Text
    product_category: Text
    rate: Annotated[Exact, Field(ge=0)]
    cost_quantity: CostQuantity
    allocation_strategy: AllocationStrategy = "even_split"
    allocation_query: Text | None = None
    allocation_label: Text | None = None

    _usage_ratio_query = only_when(
        "allocation_strategy", allocation_query=("usage_ratio",), allocation_label=("usage_ratio",)
    )


@settings(kw_only=True)
class GenericMetricsSettings:
    cluster_id: Text
    metrics: PrometheusSettings
    cost_types: Annotated[
        tuple[GenericCostType, ...], Field(min_length=1), unique_by("name", "cost type name")
    ]
    identity_source: DiscoveredIdentitySource
    display_name: Text | None = None
    metrics_step_seconds: MetricsStep = 3600
    currency: Currency = DEFAULT_CURRENCY
    """What the cost types' rates are in; every line priced with them is billed in it."""
