"""The allocation chain of every Confluent Cloud product type, as one table (`PRODUCTS`).

Each entry names the handler (service type) that resolves identities for the product type and the model that
splits its cost. Tiers are tried in order; the first that finds someone answers, and its rows carry
`chain_tier`. Both spellings Confluent uses (KAFKA_NUM_CKU / KAFKA_NUM_CKUS, ...) are listed.

Resolution context keys the chains read (`IdentityResolution.context`, filled by `handlers.py`):

- `usage_by_owner`: `{metric_key: {owner_id: Decimal}}` — Kafka usage per metric, after mapping API-key
  principals to their owners (several keys of one owner are summed; a key without an owner keeps its own
  id), positive values only. Network chains read one direction; the CKU usage chain sums `bytes_in` and
  `bytes_out`. A usage split walks owners in sorted id order, so the lowest ids absorb the rounding
  remainder whatever order the metric series came in.
- `stmt_owner_cfu`: `{owner_id: Decimal}` — Flink CFU per statement owner, derived from
  `flink_cfu_primary`, else `flink_cfu_fallback`, else 1 per running statement of the pool.

Product types that are not in the table go to `UNKNOWN` (the ecosystem's fallback allocator): the whole
line to its resource id. A line without any resource id has nothing to be charged to, so it goes to
UNALLOCATED instead of to an empty identity; every terminal tier that targets the resource does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from chargeback_assets.ecosystems.confluent_cloud import queries
from chargeback_assets.engine.allocation import (
    AllocationModel,
    Allocator,
    Chain,
    DynamicComposition,
    EvenSplit,
    ParamRatios,
    Terminal,
    UsageRatio,
    chain,
    merged_active,
    tenant_owners,
    tenant_types,
)
from chargeback_assets.engine.models import (
    UNALLOCATED,
    AllocationContext,
    AllocationMethod,
    CostType,
)

USAGE_BY_OWNER = "usage_by_owner"
STMT_OWNER_CFU = "stmt_owner_cfu"

PARTITION_COUNT = "partition_count"
"""No query produces it: KAFKA_PARTITION keeps the network chain's shape but always starts at tier 1."""

CKU_RATIOS = ParamRatios(
    (("kafka_cku_usage_ratio", Decimal("0.70")), ("kafka_cku_shared_ratio", Decimal("0.30")))
)


def resource_or_unallocated(ctx: AllocationContext) -> str:
    return ctx.billing_line.resource_id or UNALLOCATED


@dataclass(frozen=True, slots=True)
class OwnerUsage:
    """Per-owner usage summed over `metric_keys`, read from the context's `usage_by_owner`."""

    metric_keys: tuple[str, ...]

    def __call__(self, ctx: AllocationContext) -> dict[str, Decimal]:
        by_metric = ctx.identities.context.get(USAGE_BY_OWNER, {})
        totals: dict[str, Decimal] = {}
        for key in self.metric_keys:
            for owner, value in by_metric.get(key, {}).items():
                totals[owner] = totals.get(owner, Decimal(0)) + value
        return totals


@dataclass(frozen=True, slots=True)
class ContextWeights:
    """Weights a resolver already computed (`context_key`), from the metrics named in `metric_keys`."""

    context_key: str
    metric_keys: tuple[str, ...]

    def __call__(self, ctx: AllocationContext) -> dict[str, Decimal]:
        return dict(ctx.identities.context.get(self.context_key, {}))


def _to_resource(
    method: str = AllocationMethod.TERMINAL,
    detail: str = "no_identities_located",
    cost_type: CostType = CostType.SHARED,
) -> Terminal:
    return Terminal(resource_or_unallocated, cost_type, detail, method)


def network_chain(*metric_keys: str) -> Chain:
    return chain(
        UsageRatio(OwnerUsage(metric_keys)),
        EvenSplit(merged_active, CostType.SHARED, "no_metrics_located"),
        EvenSplit(tenant_owners, CostType.SHARED, "no_active_identities_located"),
        _to_resource(),
    )


CKU_USAGE = chain(
    UsageRatio(OwnerUsage((queries.BYTES_IN.key, queries.BYTES_OUT.key))),
    EvenSplit(merged_active, CostType.SHARED, "no_usage_for_active_identities"),
    EvenSplit(tenant_owners, CostType.SHARED, "no_metrics_no_active_identities_located"),
    _to_resource(),
)
ACTIVE_USAGE = chain(
    EvenSplit(merged_active, CostType.USAGE),
    EvenSplit(tenant_owners, CostType.SHARED, "no_active_identities_located"),
    _to_resource(),
)
"""The CKU shared part, Schema Registry and ksqlDB: active identities (tagged USAGE), tenant, resource."""

CKU = DynamicComposition(CKU_RATIOS, (CKU_USAGE, ACTIVE_USAGE))
KAFKA_BASE = chain(
    EvenSplit(merged_active, CostType.SHARED, "no_metrics_located"),
    EvenSplit(tenant_owners, CostType.SHARED, "no_metrics_no_active_identities_located"),
    _to_resource(AllocationMethod.TO_RESOURCE),
)
CONNECTOR_TASKS = chain(EvenSplit(merged_active, CostType.USAGE), _to_resource())
CONNECTOR_CAPACITY = chain(EvenSplit(merged_active, CostType.SHARED), _to_resource())
FLINK = chain(
    UsageRatio(
        ContextWeights(STMT_OWNER_CFU, (queries.FLINK_CFU_PRIMARY.key, queries.FLINK_CFU_FALLBACK.key))
    ),
    EvenSplit(merged_active, CostType.USAGE, "no_usage_for_active_identities"),
    EvenSplit(tenant_owners, CostType.SHARED, "no_active_identities_located"),
    _to_resource(),
)
ORG_WIDE = chain(
    EvenSplit(tenant_types("service_account", "user", "identity_pool"), CostType.SHARED),
    Terminal(UNALLOCATED, CostType.SHARED, "no_identities_located"),
)
DEFAULT = _to_resource(AllocationMethod.DEFAULT, "using_default_allocator")
CLUSTER_LINKING = _to_resource(AllocationMethod.CLUSTER_LINKING, "cluster_linking_cost", CostType.USAGE)
UNKNOWN = _to_resource(AllocationMethod.UNKNOWN, "using_unknown_allocator")

PRODUCTS: Mapping[str, tuple[str, AllocationModel]] = {
    "KAFKA_NUM_CKU": ("kafka", CKU),
    "KAFKA_NUM_CKUS": ("kafka", CKU),
    "KAFKA_NETWORK_READ": ("kafka", network_chain(queries.BYTES_OUT.key)),
    "KAFKA_NETWORK_WRITE": ("kafka", network_chain(queries.BYTES_IN.key)),
    "KAFKA_PARTITION": ("kafka", network_chain(PARTITION_COUNT)),
    "KAFKA_BASE": ("kafka", KAFKA_BASE),
    "KAFKA_STORAGE": ("kafka", KAFKA_BASE),
    "SCHEMA_REGISTRY": ("schema_registry", ACTIVE_USAGE),
    "GOVERNANCE_BASE": ("schema_registry", ACTIVE_USAGE),
    "NUM_RULES": ("schema_registry", ACTIVE_USAGE),
    "CONNECT_NUM_TASKS": ("connector", CONNECTOR_TASKS),
    "CONNECT_THROUGHPUT": ("connector", CONNECTOR_TASKS),
    "CUSTOM_CONNECT_NUM_TASKS": ("connector", CONNECTOR_TASKS),
    "CUSTOM_CONNECT_THROUGHPUT": ("connector", CONNECTOR_TASKS),
    "CONNECT_CAPACITY": ("connector", CONNECTOR_CAPACITY),
    "CUSTOM_CONNECT_PLUGIN": ("connector", CONNECTOR_CAPACITY),
    "KSQL_NUM_CSU": ("ksqldb", ACTIVE_USAGE),
    "KSQL_NUM_CSUS": ("ksqldb", ACTIVE_USAGE),
    "FLINK_NUM_CFU": ("flink", FLINK),
    "FLINK_NUM_CFUS": ("flink", FLINK),
    "AUDIT_LOG_READ": ("org_wide", ORG_WIDE),
    "SUPPORT": ("org_wide", ORG_WIDE),
    "TABLEFLOW_DATA_PROCESSED": ("default", DEFAULT),
    "TABLEFLOW_NUM_TOPICS": ("default", DEFAULT),
    "TABLEFLOW_STORAGE": ("default", DEFAULT),
    "CLUSTER_LINKING_PER_LINK": ("default", CLUSTER_LINKING),
    "CLUSTER_LINKING_READ": ("default", CLUSTER_LINKING),
    "CLUSTER_LINKING_WRITE": ("default", CLUSTER_LINKING),
}


def product_types_of(service_type: str) -> frozenset[str]:
    return frozenset(pt for pt, (service, _) in PRODUCTS.items() if service == service_type)


def model_for(product_type: str) -> AllocationModel:
    """The table's model for a product type; unknown types get `UNKNOWN`."""
    entry = PRODUCTS.get(product_type)
    return UNKNOWN if entry is None else entry[1]


def fallback_allocator() -> Allocator:
    """The ecosystem's allocator for lines no handler claims."""
    return UNKNOWN.allocate


def metric_keys(model: AllocationModel) -> tuple[str, ...]:
    """The metric keys a model's usage tiers depend on, in tier order (what a handler must fetch)."""
    if isinstance(model, UsageRatio):
        return tuple(getattr(model.source, "metric_keys", ()))
    parts: tuple[AllocationModel, ...] = ()
    if isinstance(model, Chain):
        parts = model.tiers
    elif isinstance(model, DynamicComposition):
        parts = model.models
    return tuple(dict.fromkeys(key for part in parts for key in metric_keys(part)))
