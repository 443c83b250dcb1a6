"""Confluent Cloud product handlers: who a billing line can be charged to, one handler per service type.

A handler answers for the product types `chains.PRODUCTS` assigns to its service type, asks for exactly the
metrics its chains read, and resolves two scopes: `resource_active` (identities tied to the resource by
ownership or credentials) and `metrics_derived` (principals seen using it). The tenant-period scope is
filled by the calculation, never here. Ids the inventory does not know become sentinels (`sentinels.py`)
so the cost stays under the id Confluent reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from chargeback_assets.ecosystems.base import ProductHandler
from chargeback_assets.ecosystems.confluent_cloud import chains, queries
from chargeback_assets.ecosystems.confluent_cloud.sentinels import (
    CONNECTOR_API_KEY_MASKED,
    CONNECTOR_API_KEY_NOT_FOUND,
    CONNECTOR_CREDENTIALS,
    CONNECTOR_CREDENTIALS_MASKED,
    CONNECTOR_CREDENTIALS_UNKNOWN,
    FLINK_STATEMENT_OWNER,
    FLINK_STMT_OWNER_UNKNOWN,
    KSQLDB_CREDENTIALS,
    KSQLDB_DELETED_WHEN_CALC_STARTED,
    KSQLDB_OWNER_UNKNOWN,
    known_or_sentinel,
    sentinel,
)
from chargeback_assets.engine.allocation import AllocationModel, Allocator
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import (
    BillingLine,
    Identity,
    IdentityResolution,
    IdentitySet,
    MetricQuery,
    Resource,
    ResourceUsage,
)

_QUERIES_BY_KEY: Mapping[str, MetricQuery] = {query.key: query for query in queries.ALL_QUERIES}


class _ServiceHandler:
    """What every handler shares: its product types, metric queries and allocators come from the table."""

    service_type: str = ""

    def __init__(self) -> None:
        self.product_types: frozenset[str] = chains.product_types_of(self.service_type)

    def metric_queries(self, product_type: str) -> Sequence[MetricQuery]:
        """Queries for the metrics the product type's chain reads; a key with no query is never fetched."""
        keys = chains.metric_keys(self._model(product_type))
        return tuple(_QUERIES_BY_KEY[key] for key in keys if key in _QUERIES_BY_KEY)

    def allocator(self, product_type: str) -> Allocator:
        return self._model(product_type).allocate

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """Org-wide and default lines are tied to no identity: their chains use the tenant or the resource."""
        return IdentityResolution()

    def _model(self, product_type: str) -> AllocationModel:
        if product_type not in self.product_types:
            raise ValueError(f"the {self.service_type} handler does not handle product type {product_type!r}")
        return chains.model_for(product_type)


def api_key_owners(line: BillingLine, inventory: InventoryView) -> IdentitySet:
    """Owners of the API keys scoped to the line's resource: whoever can use the resource is active on it."""
    owners = IdentitySet()
    for key in inventory.api_keys_for(line.resource_id):
        owner_id = key.metadata.get("owner_id")
        if owner_id:
            owners.add(known_or_sentinel(line, inventory, str(owner_id)))
    return owners


def _principal_owner(line: BillingLine, inventory: InventoryView, principal: str) -> Identity | None:
    """Who a metrics principal stands for: an API key's owner (None if it has none), else the principal.

    A key seen in the day's metrics was used that day, whatever lifetime the inventory recorded for it.
    """
    identity = inventory.any_identity(principal)
    if identity is None:
        return sentinel(line, principal)
    if identity.identity_type != "api_key":
        return identity
    owner_id = identity.metadata.get("owner_id")
    return known_or_sentinel(line, inventory, str(owner_id)) if owner_id else None


class KafkaHandler(_ServiceHandler):
    service_type = "kafka"

    def __init__(self) -> None:
        super().__init__()
        self._principal_metrics = tuple(
            dict.fromkeys(q.key for pt in sorted(self.product_types) for q in self.metric_queries(pt))
        )

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """Principals with positive usage become their owners; their usage is summed per owner and metric.

        A principal whose usage is zero used nothing and is not made active. Every line of the cluster sees
        every principal (as Confluent's usage is per cluster, not per product), while each chain reads only
        the metric of its own direction from `usage_by_owner`.
        """
        derived = IdentitySet()
        usage_by_owner: dict[str, dict[str, Decimal]] = {}
        for key in self._principal_metrics:
            for principal, value in (usage or {}).get(key, {}).items():
                if value <= 0:
                    continue
                owner = _principal_owner(line, inventory, principal)
                if owner is not None:
                    derived.add(owner)
                charged = principal if owner is None else owner.identity_id
                per_owner = usage_by_owner.setdefault(key, {})
                per_owner[charged] = per_owner.get(charged, Decimal(0)) + value
        return IdentityResolution(
            resource_active=api_key_owners(line, inventory),
            metrics_derived=derived,
            context={chains.USAGE_BY_OWNER: usage_by_owner},
        )


class SchemaRegistryHandler(_ServiceHandler):
    service_type = "schema_registry"

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        return IdentityResolution(resource_active=api_key_owners(line, inventory))


class ConnectorHandler(_ServiceHandler):
    service_type = "connector"

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """Exactly one identity: the connector's Kafka credentials, or a sentinel saying why there is none.

        The connector, its key and the key's owner are looked up whatever their lifetimes: the connector
        names the key it runs on now, which may have been made after the billed day (or deleted since), and
        whoever owns that key pays for every day the connector is billed.
        """
        return IdentityResolution(resource_active=IdentitySet([connector_identity(line, inventory)]))


def connector_identity(line: BillingLine, inventory: InventoryView) -> Identity:
    connector = inventory.any_resource(line.resource_id)
    if connector is None:
        return sentinel(line, CONNECTOR_CREDENTIALS_MASKED, CONNECTOR_CREDENTIALS)
    mode = str(connector.metadata.get("kafka_auth_mode") or "UNKNOWN").upper()
    if mode == "SERVICE_ACCOUNT":
        account = connector.metadata.get("kafka_service_account_id")
        if not account:
            return sentinel(line, CONNECTOR_CREDENTIALS_UNKNOWN, CONNECTOR_CREDENTIALS)
        return known_or_sentinel(line, inventory, str(account))
    if mode == "KAFKA_API_KEY":
        return _connector_key_owner(line, inventory, str(connector.metadata.get("kafka_api_key") or ""))
    return sentinel(line, connector.resource_id, CONNECTOR_CREDENTIALS)


def _connector_key_owner(line: BillingLine, inventory: InventoryView, key_id: str) -> Identity:
    if not key_id:
        return sentinel(line, CONNECTOR_CREDENTIALS_UNKNOWN, CONNECTOR_CREDENTIALS)
    if set(key_id) == {"*"}:
        return sentinel(line, CONNECTOR_API_KEY_MASKED, CONNECTOR_CREDENTIALS)
    key = inventory.any_identity(key_id)
    if key is None:
        return sentinel(line, CONNECTOR_API_KEY_NOT_FOUND, CONNECTOR_CREDENTIALS)
    owner_id = key.metadata.get("owner_id")
    if not owner_id:
        return sentinel(line, CONNECTOR_CREDENTIALS_UNKNOWN, CONNECTOR_CREDENTIALS)
    return known_or_sentinel(line, inventory, str(owner_id))


class KsqldbHandler(_ServiceHandler):
    service_type = "ksqldb"

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """The cluster's credential identity owns it; a missing cluster or owner gets a telling sentinel."""
        cluster = inventory.any_resource(line.resource_id)
        if cluster is None:
            owner = sentinel(line, KSQLDB_DELETED_WHEN_CALC_STARTED, KSQLDB_CREDENTIALS)
        else:
            owner_id = cluster.owner_id or cluster.metadata.get("owner_id")
            if not owner_id or owner_id == KSQLDB_OWNER_UNKNOWN:
                owner = sentinel(line, KSQLDB_OWNER_UNKNOWN, KSQLDB_CREDENTIALS)
            else:
                owner = known_or_sentinel(line, inventory, str(owner_id))
        return IdentityResolution(resource_active=IdentitySet([owner]))


class FlinkHandler(_ServiceHandler):
    service_type = "flink"

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """Statement owners of the pool, weighted by CFU (metrics) or by running statements (no metrics).

        Metric owners are `metrics_derived`; owners found only through running statements are
        `resource_active`. Statement names are matched within the line's pool only, because names repeat
        across pools.
        """
        statements = _pool_statements(inventory, line.resource_id)
        cfu = _statement_cfu(usage)
        weights: dict[str, Decimal] = {}
        if cfu:
            by_name: dict[str, Resource] = {}
            for statement in statements:
                for name in (statement.display_name, statement.metadata.get("statement_name")):
                    if name:
                        by_name.setdefault(str(name), statement)
            for name, value in cfu.items():
                matched = by_name.get(name)
                owner_id = (matched.owner_id if matched else None) or FLINK_STMT_OWNER_UNKNOWN
                weights[owner_id] = weights.get(owner_id, Decimal(0)) + value
        else:
            for statement in statements:
                if not statement.metadata.get("is_stopped"):
                    owner_id = statement.owner_id or FLINK_STMT_OWNER_UNKNOWN
                    weights[owner_id] = weights.get(owner_id, Decimal(0)) + Decimal(1)
        if not weights:
            return IdentityResolution()
        owners = IdentitySet(_statement_owner(line, inventory, owner_id) for owner_id in weights)
        scopes = {"metrics_derived": owners} if cfu else {"resource_active": owners}
        return IdentityResolution(**scopes, context={chains.STMT_OWNER_CFU: weights})


def _pool_statements(inventory: InventoryView, pool_id: str) -> list[Resource]:
    """The pool's statements in the window, by id, so that a repeated name always matches the same one."""
    return sorted(
        (
            r
            for r in inventory.resources.values()
            if r.resource_type == "flink_statement" and r.metadata.get("compute_pool_id") == pool_id
        ),
        key=lambda r: r.resource_id,
    )


def _statement_cfu(usage: ResourceUsage | None) -> dict[str, Decimal]:
    """Positive CFU per statement name from the primary metric, else the fallback: never both."""
    for query in (queries.FLINK_CFU_PRIMARY, queries.FLINK_CFU_FALLBACK):
        positive = {name: value for name, value in (usage or {}).get(query.key, {}).items() if value > 0}
        if positive:
            return positive
    return {}


def _statement_owner(line: BillingLine, inventory: InventoryView, owner_id: str) -> Identity:
    if owner_id == FLINK_STMT_OWNER_UNKNOWN:
        return sentinel(line, owner_id, FLINK_STATEMENT_OWNER)
    return known_or_sentinel(line, inventory, owner_id)


class OrgWideHandler(_ServiceHandler):
    service_type = "org_wide"


class DefaultHandler(_ServiceHandler):
    service_type = "default"


HANDLER_TYPES = (
    KafkaHandler,
    SchemaRegistryHandler,
    ConnectorHandler,
    KsqldbHandler,
    FlinkHandler,
    OrgWideHandler,
    DefaultHandler,
)


def claims_by_product_type(handlers: Iterable[ProductHandler]) -> dict[str, ProductHandler]:
    """Which handler answers for each product type; a type claimed twice is a wiring error."""
    claims: dict[str, ProductHandler] = {}
    for handler in handlers:
        for product_type in sorted(handler.product_types):
            other = claims.get(product_type)
            if other is not None:
                raise ValueError(
                    f"product type {product_type} is claimed by both the {other.service_type!r} "
                    f"and the {handler.service_type!r} handlers"
                )
            claims[product_type] = handler
    return claims


def confluent_cloud_handlers() -> list[ProductHandler]:
    """The handler set, in gather order, checked: no product type claimed twice, every table entry claimed."""
    handlers: list[ProductHandler] = [handler_type() for handler_type in HANDLER_TYPES]
    unclaimed = sorted(set(chains.PRODUCTS) - set(claims_by_product_type(handlers)))
    if unclaimed:
        raise ValueError(f"product types with no handler for their service type: {', '.join(unclaimed)}")
    return handlers
