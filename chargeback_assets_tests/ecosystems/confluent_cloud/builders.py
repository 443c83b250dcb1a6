"""Builders for Confluent Cloud allocation scenarios, with the spec's defaults (tenant org-123, 2026-02-01).

`allocate` runs a line the way the calculation does: inventory view, the claiming handler's `resolve`, the
tenant period injected by the engine, then `allocate_line` (which also proves the rows sum to the bill).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from chargeback_assets.ecosystems.confluent_cloud import chains
from chargeback_assets.ecosystems.confluent_cloud.handlers import (
    claims_by_product_type,
    confluent_cloud_handlers,
)
from chargeback_assets.engine.calculate import allocate_line, line_window, with_tenant_period
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import (
    UNALLOCATED,
    BillingLine,
    ChargebackRow,
    Identity,
    IdentityResolution,
    Resource,
    ResourceUsage,
    Window,
)

ECOSYSTEM = "confluent_cloud"
TENANT = "org-123"
DAY = date(2026, 2, 1)
WINDOW = Window.for_day(DAY)
HANDLERS = claims_by_product_type(confluent_cloud_handlers())


def line(
    product_type: str,
    total: str,
    resource_id: str = "lkc-abc",
    *,
    provider_prorated: bool = True,
    quantity: str = "1",
    day: date = DAY,
) -> BillingLine:
    return BillingLine(
        ecosystem=ECOSYSTEM,
        tenant_id=TENANT,
        timestamp=Window.for_day(day).start,
        resource_id=resource_id,
        product_category=product_type.split("_")[0],
        product_type=product_type,
        quantity=Decimal(quantity),
        unit_price=Decimal(total) / Decimal(quantity),
        total_cost=Decimal(total),
        env_id="env-1",
        provider_prorated=provider_prorated,
    )


def ident(identity_id: str, identity_type: str = "service_account", **metadata: Any) -> Identity:
    return Identity(
        ECOSYSTEM, TENANT, identity_id, identity_type, display_name=identity_id, metadata=metadata
    )


def sas(*ids: str) -> list[Identity]:
    return [ident(i) for i in ids]


def api_key(key_id: str, owner: str | None, resource: str | None = "lkc-abc") -> Identity:
    return ident(key_id, "api_key", owner_id=owner, resource_id=resource)


def keys_on(resource: str, *owners: str) -> list[Identity]:
    """The owners plus one API key each on `resource`: the usual way identities become resource-active."""
    return [*sas(*owners), *(api_key(f"key-{owner}", owner, resource) for owner in owners)]


UNALLOCATED_IDENTITY = ident(UNALLOCATED, "system")


def res(resource_id: str, resource_type: str, *, owner_id: str | None = None, **fields: Any) -> Resource:
    metadata = fields.pop("metadata", {})
    return Resource(
        ECOSYSTEM, TENANT, resource_id, resource_type, owner_id=owner_id, metadata=metadata, **fields
    )


def statement(
    resource_id: str, owner: str | None, pool: str = "lfcp-pool-1", *, stopped: bool = False
) -> Resource:
    return res(
        f"uid-{pool}-{resource_id}",
        "flink_statement",
        owner_id=owner,
        display_name=resource_id,
        metadata={"compute_pool_id": pool, "statement_name": resource_id, "is_stopped": stopped},
    )


def usage(**by_metric: Mapping[str, int | str]) -> ResourceUsage:
    return {key: {s: Decimal(str(v)) for s, v in subjects.items()} for key, subjects in by_metric.items()}


@dataclass(frozen=True)
class Outcome:
    rows: list[ChargebackRow]
    resolution: IdentityResolution


def resolve(
    bill: BillingLine,
    identities: Iterable[Identity] = (),
    resources: Iterable[Resource] = (),
    metrics: ResourceUsage | None = None,
) -> tuple[InventoryView, IdentityResolution]:
    inventory = InventoryView.build(line_window(bill), resources, identities)
    handler = HANDLERS.get(bill.product_type)
    resolution = IdentityResolution() if handler is None else handler.resolve(bill, inventory, metrics)
    return inventory, resolution


def allocate(
    bill: BillingLine,
    identities: Iterable[Identity] = (),
    resources: Iterable[Resource] = (),
    metrics: ResourceUsage | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    resolution: IdentityResolution | None = None,
    resource: Resource | None = None,
) -> Outcome:
    """Allocate one line through its handler; `resolution` replaces the handler's answer (identity override).

    Lines of a product type no handler claims get an empty resolution and the fallback allocator.
    """
    inventory, resolved = resolve(bill, identities, resources, metrics)
    if resolution is not None:
        resolved = resolution
    handler = HANDLERS.get(bill.product_type)
    allocator = chains.fallback_allocator() if handler is None else handler.allocator(bill.product_type)
    rows = allocate_line(
        bill,
        allocator,
        with_tenant_period(resolved, inventory.tenant_period()),
        window=line_window(bill),
        resource=resource,
        usage=metrics,
        params=params,
    )
    return Outcome(rows, resolved)


Row = tuple[str, Decimal, str, str | None, str | None, int | None]


def table(rows: Iterable[ChargebackRow], *metadata_keys: str) -> list[tuple[Any, ...]]:
    """Rows as (identity, amount, cost type, method, detail, chain tier, *metadata) in allocation order."""
    return [
        (
            r.identity_id,
            r.amount,
            str(r.cost_type),
            r.allocation_method,
            r.allocation_detail,
            r.metadata.get("chain_tier"),
            *(r.metadata.get(k) for k in metadata_keys),
        )
        for r in rows
    ]


def usage_rows(*pairs: tuple[str, str], tier: int = 0, detail: str = "usage_ratio_allocation") -> list[Row]:
    return [(i, Decimal(a), "usage", "usage_ratio", detail, tier) for i, a in pairs]


def even_rows(
    *pairs: tuple[str, str], cost_type: str = "shared", detail: str | None = None, tier: int | None = 0
) -> list[Row]:
    return [(i, Decimal(a), cost_type, "even_split", detail, tier) for i, a in pairs]


def terminal_row(
    identity: str, amount: str, tier: int, detail: str = "no_identities_located", method: str = "terminal"
) -> Row:
    return (identity, Decimal(amount), "shared", method, detail, tier)
