"""The domain objects every layer speaks: billing lines, inventory, usage, resolutions, chargeback rows.

They are plain frozen dataclasses so that the engine stays pure (no I/O, no Dagster) and so that two runs
over the same inputs compare equal row for row. Money fields are always `Decimal`; timestamps are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

UNALLOCATED = "UNALLOCATED"
"""The system identity that receives cost nobody can be charged for."""

SYSTEM_IDENTITY_TYPE = "system"
OWNER_IDENTITY_TYPES = ("service_account", "user", "identity_pool", "principal")
"""Identity types a tenant-wide fallback tier may charge; api keys and system identities never qualify."""
PAYER_IDENTITY_TYPES = (*OWNER_IDENTITY_TYPES, "team")
"""Identity types that name someone who can be sent the bill: a service account, user, identity pool or
principal (a self-managed cluster's user), and a team (a configured static identity). Cost charged to
anything else (a resource, a stand-in for an id the inventory lacks, an API key, UNALLOCATED) is
unattributed, and so is cost charged to an id of these types that the inventory does not hold."""
DEFAULT_CURRENCY = "USD"
"""Confluent Cloud bills in USD, and the cost models price in it."""


class CostType(StrEnum):
    USAGE = "usage"
    SHARED = "shared"


class AllocationMethod(StrEnum):
    EVEN_SPLIT = "even_split"
    USAGE_RATIO = "usage_ratio"
    TERMINAL = "terminal"
    DIRECT_OWNER = "direct_owner"
    TO_RESOURCE = "to_resource"
    DEFAULT = "default"
    UNKNOWN = "unknown"
    CLUSTER_LINKING = "cluster_linking"
    ALLOCATION_FAILED = "ALLOCATION_FAILED"


def require_utc(value: datetime, what: str) -> datetime:
    """Reject naive timestamps: a naive time silently shifts a whole day's bill between partitions."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware UTC, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def newest_settled_day(today: date, settle_days: int) -> date:
    """The newest day the provider should no longer revise: yesterday minus the tenant's `settle_days`.

    The one rule for "settled": the daily schedule charges this day, and outputs mark it and older days
    settled (a younger day is provisional: its bill may still change).
    """
    return today - timedelta(days=1 + settle_days)


def is_settled(day: date, today: date, settle_days: int) -> bool:
    return day <= newest_settled_day(today, settle_days)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time window `[start, end)`: a sample on `end` belongs to the next window."""

    start: datetime
    end: datetime

    @classmethod
    def for_day(cls, day: date) -> Window:
        start = day_start(day)
        return cls(start, start + timedelta(days=1))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@dataclass(frozen=True, slots=True)
class BillingLine:
    """One line of a tenant's bill for one period.

    `provider_prorated` is true for lines a provider already prorated (Confluent's Billing API): they are
    allocated in full. Lines constructed from a cost model set it false so that a resource that existed for
    part of the period has its inactive share charged to the resource itself.
    """

    ecosystem: str
    tenant_id: str
    timestamp: datetime
    resource_id: str
    product_category: str
    product_type: str
    quantity: Decimal
    unit_price: Decimal
    total_cost: Decimal
    env_id: str = ""
    currency: str = DEFAULT_CURRENCY
    granularity: str = "daily"
    provider_prorated: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, datetime, str, str, str, str]:
        return (
            self.ecosystem,
            self.tenant_id,
            self.timestamp,
            self.env_id,
            self.resource_id,
            self.product_type,
            self.product_category,
        )


class Billed(Protocol):
    """Anything billed in a currency: a billing line, or the light line totals the checks read."""

    @property
    def currency(self) -> str: ...


def currency_of(lines: Iterable[Billed]) -> str:
    """The currency a set of lines is billed in (several, comma-separated, should a bill ever mix them)."""
    return ",".join(sorted({line.currency for line in lines})) or DEFAULT_CURRENCY


def _overlaps(
    created_at: datetime | None, deleted_at: datetime | None, start: datetime, end: datetime
) -> bool:
    return (created_at is None or created_at < end) and (deleted_at is None or deleted_at >= start)


def _active_at(created_at: datetime | None, deleted_at: datetime | None, instant: datetime) -> bool:
    return (created_at is None or created_at <= instant) and (deleted_at is None or deleted_at > instant)


@dataclass(frozen=True, slots=True)
class Resource:
    ecosystem: str
    tenant_id: str
    resource_id: str
    resource_type: str
    display_name: str | None = None
    parent_id: str | None = None
    owner_id: str | None = None
    status: str = "active"
    cloud: str | None = None
    region: str | None = None
    created_at: datetime | None = None
    deleted_at: datetime | None = None
    last_seen_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def overlaps(self, window: Window) -> bool:
        return _overlaps(self.created_at, self.deleted_at, window.start, window.end)

    def active_at(self, instant: datetime) -> bool:
        return _active_at(self.created_at, self.deleted_at, instant)


@dataclass(frozen=True, slots=True)
class Identity:
    ecosystem: str
    tenant_id: str
    identity_id: str
    identity_type: str
    display_name: str | None = None
    created_at: datetime | None = None
    deleted_at: datetime | None = None
    last_seen_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def overlaps(self, window: Window) -> bool:
        return _overlaps(self.created_at, self.deleted_at, window.start, window.end)

    def active_at(self, instant: datetime) -> bool:
        return _active_at(self.created_at, self.deleted_at, instant)


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """A PromQL range query a product handler needs; `{}` marks where the resource filter is injected."""

    key: str
    query_expression: str
    label_keys: tuple[str, ...]
    resource_label: str | None = None
    subject_label: str | None = None


@dataclass(frozen=True, slots=True)
class MetricRow:
    timestamp: datetime
    metric_key: str
    value: float
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """A day's summed usage of one subject (principal, statement, label value) on one resource."""

    resource_id: str
    metric_key: str
    subject: str
    value: Decimal


ResourceUsage = Mapping[str, Mapping[str, Decimal]]
"""metric key -> subject -> summed value, for one resource and one window."""


class IdentitySet(Mapping[str, Identity]):
    """Identities keyed by id, kept in insertion order; adding an id again replaces it (last wins)."""

    __slots__ = ("_items",)

    def __init__(self, identities: Iterable[Identity] = ()) -> None:
        self._items: dict[str, Identity] = {}
        for identity in identities:
            self._items[identity.identity_id] = identity

    def add(self, identity: Identity) -> None:
        self._items[identity.identity_id] = identity

    def __getitem__(self, identity_id: str) -> Identity:
        return self._items[identity_id]

    def get(self, identity_id: str, default: Identity | None = None) -> Identity | None:  # type: ignore[override]
        """Straight from the dict: Mapping's default goes through __getitem__ and a caught KeyError."""
        return self._items.get(identity_id, default)

    def __contains__(self, identity_id: object) -> bool:
        return identity_id in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"IdentitySet({list(self._items)!r})"

    def ids(self) -> list[str]:
        return list(self._items)

    def ids_by_type(self, *identity_types: str) -> list[str]:
        return [i for i, identity in self._items.items() if identity.identity_type in identity_types]

    def union(self, other: IdentitySet) -> IdentitySet:
        merged = IdentitySet(self._items.values())
        for identity in other.values():
            merged.add(identity)
        return merged


@dataclass(slots=True)
class IdentityResolution:
    """Who a billing line can be charged to, by scope.

    `resource_active`: identities tied to the resource (owners, keys on it, configured identities).
    `metrics_derived`: principals seen in the window's metrics. `tenant_period`: every non-system identity
    whose lifetime overlaps the window; filled by the calculation, never by a handler. `context` carries
    data an allocator needs beyond identities (for example usage per owner).
    """

    resource_active: IdentitySet = field(default_factory=IdentitySet)
    metrics_derived: IdentitySet = field(default_factory=IdentitySet)
    tenant_period: IdentitySet = field(default_factory=IdentitySet)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def merged_active(self) -> IdentitySet:
        return self.resource_active.union(self.metrics_derived)


@dataclass(frozen=True, slots=True)
class AllocationContext:
    timeslice: datetime
    billing_line: BillingLine
    identities: IdentityResolution
    split_amount: Decimal
    usage: ResourceUsage | None = None
    metrics_fetch_failed: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    dimension_metadata: Mapping[str, Any] = field(default_factory=dict)
    tier_metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the chains and compositions around the allocating tier stamp on each of its rows (`chain_tier`,
    `composition_index`, ...): it overrides the row's own metadata, and an outer stamp overrides an inner."""


@dataclass(frozen=True, slots=True)
class ChargebackRow:
    """One allocated amount: the dimension (who, what, how) and the money."""

    ecosystem: str
    tenant_id: str
    timestamp: datetime
    resource_id: str | None
    product_category: str
    product_type: str
    identity_id: str
    cost_type: CostType
    amount: Decimal
    allocation_method: str | None = None
    allocation_detail: str | None = None
    env_id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dimension(self) -> tuple[str, str, str, str | None, str, str, str, str, str | None, str | None]:
        """The columns that identify a chargeback dimension; rows sharing one are summed."""
        return (
            self.ecosystem,
            self.tenant_id,
            self.env_id,
            self.resource_id,
            self.product_category,
            self.product_type,
            self.identity_id,
            str(self.cost_type),
            self.allocation_method,
            self.allocation_detail,
        )


@dataclass(frozen=True, slots=True)
class AllocationResult:
    rows: tuple[ChargebackRow, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
