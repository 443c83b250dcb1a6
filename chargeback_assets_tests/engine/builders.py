"""Small builders for engine tests: a line, identities and a context with sensible defaults."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from chargeback_assets.engine.models import (
    UTC,
    AllocationContext,
    BillingLine,
    Identity,
    IdentityResolution,
    IdentitySet,
)

DAY = datetime(2026, 2, 1, tzinfo=UTC)


def line(total: str = "10.00", product_type: str = "KAFKA_NUM_CKUS", **overrides: Any) -> BillingLine:
    fields: dict[str, Any] = {
        "ecosystem": "confluent_cloud",
        "tenant_id": "org-123",
        "timestamp": DAY,
        "resource_id": "lkc-abc",
        "product_category": "KAFKA",
        "product_type": product_type,
        "quantity": Decimal(1),
        "unit_price": Decimal(total),
        "total_cost": Decimal(total),
        "env_id": "env-1",
    }
    fields.update(overrides)
    return BillingLine(**fields)


def identity(identity_id: str, identity_type: str = "service_account", **overrides: Any) -> Identity:
    return Identity("confluent_cloud", "org-123", identity_id, identity_type, **overrides)


def identities(*ids: str, identity_type: str = "service_account") -> IdentitySet:
    return IdentitySet(identity(i, identity_type) for i in ids)


def context(
    split: str,
    *,
    active: tuple[str, ...] = (),
    tenant: tuple[str, ...] = (),
    metrics_fetch_failed: bool = False,
    params: dict[str, Any] | None = None,
    total: str | None = None,
) -> AllocationContext:
    billing_line = line(total or split)
    return AllocationContext(
        timeslice=billing_line.timestamp,
        billing_line=billing_line,
        identities=IdentityResolution(resource_active=identities(*active), tenant_period=identities(*tenant)),
        split_amount=Decimal(split),
        metrics_fetch_failed=metrics_fetch_failed,
        params=params or {},
    )
