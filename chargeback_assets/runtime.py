"""A tenant's validated config -> its running ecosystem, with the tenant's overrides applied.

This sits above both `config` and `ecosystems/`: settings flow down into the ecosystem, which never reads
the app config. Overrides were imported and checked when the config was loaded; an allocator override
replaces the allocator of one product type, an identity-resolution override the resolution of one service
type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chargeback_assets.config import TenantConfig
from chargeback_assets.ecosystems import ECOSYSTEMS
from chargeback_assets.ecosystems.base import Allocator, EcosystemRuntime, ProductHandler
from chargeback_assets.ecosystems.retry import DEFAULT_RETRY_BUDGET_SECONDS, RetryBudget
from chargeback_assets.engine.allocation import Terminal, standalone
from chargeback_assets.engine.calculate import Resolver
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.loading import load_allocator, load_resolver
from chargeback_assets.engine.models import (
    UNALLOCATED,
    AllocationMethod,
    BillingLine,
    IdentityResolution,
    MetricQuery,
    ResourceUsage,
)

UNKNOWN_PRODUCT_ALLOCATOR: Allocator = standalone(
    Terminal(UNALLOCATED, detail="using_unknown_allocator", method=AllocationMethod.UNKNOWN)
)
"""For ecosystems without a fallback of their own: a line nobody handles still sums to its bill."""


@dataclass(slots=True)
class OverriddenHandler:
    """A handler with some of its allocators or its resolution replaced by the tenant's own callables."""

    inner: ProductHandler
    allocators: Mapping[str, Allocator] = field(default_factory=dict)
    resolver: Resolver | None = None

    @property
    def service_type(self) -> str:
        return self.inner.service_type

    @property
    def product_types(self) -> frozenset[str]:
        return self.inner.product_types

    def metric_queries(self, product_type: str) -> Sequence[MetricQuery]:
        return self.inner.metric_queries(product_type)

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        if self.resolver is not None:
            return self.resolver(line, inventory, usage)
        return self.inner.resolve(line, inventory, usage)

    def allocator(self, product_type: str) -> Allocator:
        return self.allocators.get(product_type) or self.inner.allocator(product_type)


def apply_overrides(
    handlers: Sequence[ProductHandler],
    allocator_overrides: Mapping[str, str],
    resolution_overrides: Mapping[str, str],
) -> list[ProductHandler]:
    allocators = {product_type: load_allocator(path) for product_type, path in allocator_overrides.items()}
    resolvers = {service_type: load_resolver(path) for service_type, path in resolution_overrides.items()}
    result: list[ProductHandler] = []
    for handler in handlers:
        own = {pt: allocators[pt] for pt in handler.product_types if pt in allocators}
        resolver = resolvers.get(handler.service_type)
        result.append(OverriddenHandler(handler, own, resolver) if own or resolver else handler)
    return result


def build_runtime(tenant: TenantConfig, budget: RetryBudget | None = None) -> EcosystemRuntime:
    """The tenant's running ecosystem, its HTTP clients retrying within `budget`; no source is called yet.

    A run passes the one budget it made for all its tenants, so the run as a whole stops retrying at its
    deadline and one `cancel()` stops every client; without one (a script, a test) the tenant gets a
    default budget of its own.
    """
    budget = budget or RetryBudget(DEFAULT_RETRY_BUDGET_SECONDS)
    ecosystem = ECOSYSTEMS[tenant.ecosystem]
    runtime = ecosystem.build(tenant.name, tenant.tenant_id, tenant.plugin_settings, budget)
    runtime.handlers = apply_overrides(
        runtime.handlers, tenant.allocator_overrides, tenant.identity_resolution_overrides
    )
    if runtime.fallback_allocator is None:
        runtime.fallback_allocator = UNKNOWN_PRODUCT_ALLOCATOR
    return runtime
