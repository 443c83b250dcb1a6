"""A large synthetic Confluent Cloud tenant-day, built in memory from a seed (issue 2's workload).

50 Kafka clusters in 10 environments, 2,000 service accounts owning 4,000 API keys (two each; 3,800 scoped
to Kafka clusters, 200 to schema registries), connectors, ksqlDB clusters, Flink pools with statements,
and about 600 daily billing lines covering every product type of `chains.PRODUCTS`. Usage is hourly bytes
in and out per principal per cluster (and hourly CFU per Flink statement), folded into a day's usage by
the same `summarize_usage` the pipeline uses.

`PRINCIPALS_PER_CLUSTER` is the knob that sizes the output: 25 principals with traffic per cluster (API
keys of the cluster, drawn from its 76 keys of 40 owners) lands the day at about 16,100 chargeback rows, of
which 4,000 are the two org-wide lines split over every service account.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from chargeback_assets.ecosystems.confluent_cloud import queries
from chargeback_assets.ecosystems.confluent_cloud.chains import PRODUCTS
from chargeback_assets.ecosystems.prometheus import summarize_usage
from chargeback_assets.engine.models import (
    BillingLine,
    Identity,
    MetricQuery,
    MetricRow,
    Resource,
    ResourceUsage,
    Window,
)
from chargeback_assets.engine.money import quantize
from chargeback_assets.stages.inventory import unallocated_identity

ECOSYSTEM = "confluent_cloud"
TENANT_ID = "bench-tenant"
ENVIRONMENTS = 10
CLUSTERS = 50
SERVICE_ACCOUNTS = 2000
API_KEYS = 4000
PRINCIPALS_PER_CLUSTER = 25
CONNECTORS_PER_CLUSTER = 2
STATEMENTS_PER_POOL = 4
SCHEMA_REGISTRY_KEY_EVERY = 20
"""Every 20th API key is scoped to its owner's schema registry instead of a Kafka cluster."""

KAFKA_LINES = (
    "KAFKA_NETWORK_READ",
    "KAFKA_NETWORK_WRITE",
    "KAFKA_PARTITION",
    "KAFKA_BASE",
    "KAFKA_STORAGE",
)
CONNECTOR_LINES = (
    ("CONNECT_NUM_TASKS", "CONNECT_THROUGHPUT"),
    ("CUSTOM_CONNECT_NUM_TASKS", "CUSTOM_CONNECT_THROUGHPUT"),
    ("CONNECT_CAPACITY", "CUSTOM_CONNECT_PLUGIN"),
)
SCHEMA_REGISTRY_LINES = ("SCHEMA_REGISTRY", "GOVERNANCE_BASE", "NUM_RULES")
PER_CLUSTER_EXTRAS = (
    "TABLEFLOW_DATA_PROCESSED",
    "TABLEFLOW_NUM_TOPICS",
    "TABLEFLOW_STORAGE",
    "CLUSTER_LINKING_PER_LINK",
    "CLUSTER_LINKING_READ",
    "CLUSTER_LINKING_WRITE",
)
"""Billed on the first cluster of each environment."""


@dataclass(slots=True)
class TenantDay:
    day: date
    window: Window
    lines: list[BillingLine] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    usage: dict[str, ResourceUsage] = field(default_factory=dict)


class _Builder:
    def __init__(self, day: date, seed: int) -> None:
        self.rng = random.Random(seed)
        self.out = TenantDay(day, Window.for_day(day))
        self.created = self.out.window.start - timedelta(days=90)

    def resource(self, resource_id: str, resource_type: str, **fields: object) -> Resource:
        resource = Resource(
            ECOSYSTEM, TENANT_ID, resource_id, resource_type, created_at=self.created, **fields
        )
        self.out.resources.append(resource)
        return resource

    def identity(self, identity_id: str, identity_type: str, **metadata: object) -> Identity:
        identity = Identity(
            ECOSYSTEM, TENANT_ID, identity_id, identity_type, created_at=self.created, metadata=metadata
        )
        self.out.identities.append(identity)
        return identity

    def line(self, product_type: str, resource_id: str, env_id: str) -> None:
        quantity = Decimal(self.rng.randint(1, 5000)) / 100
        unit_price = Decimal(self.rng.randint(1, 3000)) / 1000
        self.out.lines.append(
            BillingLine(
                ecosystem=ECOSYSTEM,
                tenant_id=TENANT_ID,
                timestamp=self.out.window.start,
                resource_id=resource_id,
                product_category=product_type.split("_")[0].lower(),
                product_type=product_type,
                quantity=quantity,
                unit_price=unit_price,
                total_cost=quantize(quantity * unit_price),
                env_id=env_id,
            )
        )

    def hourly_usage(self, resource_id: str, query: MetricQuery, subjects: list[str]) -> ResourceUsage:
        """24 hourly samples per subject (a few idle hours), summed into the day by the pipeline's fold."""
        hours = [self.out.window.start + timedelta(hours=h) for h in range(24)]
        rows: list[MetricRow] = []
        for subject in subjects:
            scale = self.rng.choice((1e3, 1e5, 1e7))
            labels = {query.resource_label or "": resource_id, query.subject_label or "": subject}
            rows += [
                MetricRow(hour, query.key, round(self.rng.random() * scale, 3), labels)
                for hour in hours
                if self.rng.random() > 0.1
            ]
        return {query.key: {r.subject: r.value for r in summarize_usage(rows, query, resource_id)}}


def tenant_day(day: date, seed: int = 2) -> TenantDay:
    """The synthetic tenant-day; the same (day, seed) always gives the same lines, inventory and usage."""
    b = _Builder(day, seed)
    accounts = [b.identity(f"sa-{i:06d}", "service_account") for i in range(SERVICE_ACCOUNTS)]
    b.out.identities.append(unallocated_identity(ECOSYSTEM, TENANT_ID))
    envs = [b.resource(f"env-{i:04d}", "environment") for i in range(ENVIRONMENTS)]
    clusters = [
        b.resource(f"lkc-{i:04d}", "kafka_cluster", parent_id=envs[i % ENVIRONMENTS].resource_id)
        for i in range(CLUSTERS)
    ]
    registries = [
        b.resource(f"lsrc-{i:04d}", "schema_registry", parent_id=e.resource_id) for i, e in enumerate(envs)
    ]
    keys_by_cluster: dict[str, list[str]] = {c.resource_id: [] for c in clusters}
    for k in range(API_KEYS):
        owner = k // 2
        if k % SCHEMA_REGISTRY_KEY_EVERY == SCHEMA_REGISTRY_KEY_EVERY - 1:
            scope = registries[(k // SCHEMA_REGISTRY_KEY_EVERY) % ENVIRONMENTS].resource_id
        else:
            scope = clusters[owner % CLUSTERS].resource_id
            keys_by_cluster[scope].append(f"KEY{k:06d}")
        b.identity(f"KEY{k:06d}", "api_key", owner_id=accounts[owner].identity_id, resource_id=scope)

    for index, cluster in enumerate(clusters):
        cid, env_id = cluster.resource_id, cluster.parent_id or ""
        b.line("KAFKA_NUM_CKU" if index % 2 else "KAFKA_NUM_CKUS", cid, env_id)
        for product_type in KAFKA_LINES:
            b.line(product_type, cid, env_id)
        principals = b.rng.sample(keys_by_cluster[cid], PRINCIPALS_PER_CLUSTER)
        b.out.usage[cid] = {
            **b.hourly_usage(cid, queries.BYTES_IN, principals),
            **b.hourly_usage(cid, queries.BYTES_OUT, principals),
        }
        for serial, product_types in enumerate(_connector_line_pairs(index)):
            connector = b.resource(
                f"lcc-{index:04d}{serial}",
                "connector",
                parent_id=cid,
                metadata=_connector_auth(
                    serial, accounts[b.rng.randrange(SERVICE_ACCOUNTS)], keys_by_cluster[cid]
                ),
            )
            for product_type in product_types:
                b.line(product_type, connector.resource_id, env_id)

    for index, env in enumerate(envs):
        env_id = env.resource_id
        for product_type in SCHEMA_REGISTRY_LINES:
            b.line(product_type, registries[index].resource_id, env_id)
        owner = accounts[b.rng.randrange(SERVICE_ACCOUNTS)].identity_id
        ksql = b.resource(f"lksqlc-{index:04d}", "ksqldb_cluster", parent_id=env_id, owner_id=owner)
        b.line("KSQL_NUM_CSU" if index % 2 else "KSQL_NUM_CSUS", ksql.resource_id, env_id)
        pool = b.resource(f"lfcp-{index:04d}", "flink_compute_pool", parent_id=env_id)
        names = []
        for s in range(STATEMENTS_PER_POOL):
            name = f"stmt-{index}-{s}"
            names.append(name)
            b.resource(
                f"stmt-uid-{index:04d}-{s}",
                "flink_statement",
                display_name=name,
                parent_id=pool.resource_id,
                owner_id=accounts[b.rng.randrange(SERVICE_ACCOUNTS)].identity_id,
                metadata={"compute_pool_id": pool.resource_id, "statement_name": name, "is_stopped": False},
            )
        b.out.usage[pool.resource_id] = b.hourly_usage(pool.resource_id, queries.FLINK_CFU_PRIMARY, names)
        b.line("FLINK_NUM_CFU" if index % 2 else "FLINK_NUM_CFUS", pool.resource_id, env_id)
        first_cluster = clusters[index].resource_id
        for product_type in PER_CLUSTER_EXTRAS:
            b.line(product_type, first_cluster, env_id)
    b.line("AUDIT_LOG_READ", "", "")
    b.line("SUPPORT", "", "")
    missing = set(PRODUCTS) - {line.product_type for line in b.out.lines}
    if missing:
        raise AssertionError(f"the synthetic day misses product types {sorted(missing)}")
    return b.out


def _connector_line_pairs(cluster_index: int) -> Iterator[tuple[str, str]]:
    for serial in range(CONNECTORS_PER_CLUSTER):
        yield CONNECTOR_LINES[(cluster_index * CONNECTORS_PER_CLUSTER + serial) % len(CONNECTOR_LINES)]


def _connector_auth(serial: int, account: Identity, cluster_keys: list[str]) -> dict[str, object]:
    if serial % 2:
        return {"kafka_auth_mode": "KAFKA_API_KEY", "kafka_api_key": cluster_keys[0]}
    return {"kafka_auth_mode": "SERVICE_ACCOUNT", "kafka_service_account_id": account.identity_id}
