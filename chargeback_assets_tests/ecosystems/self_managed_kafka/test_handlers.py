"""Allocation of self-managed Kafka lines through the real handler and chains (scenarios 29-30).

Every case goes through `engine.calculate.allocate_line`, which raises if the rows do not sum to the bill.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chargeback_assets.ecosystems.self_managed_kafka.cost_model import (
    COMPUTE,
    NETWORK_EGRESS,
    NETWORK_INGRESS,
    PRODUCT_TYPES,
    STORAGE,
)
from chargeback_assets.ecosystems.self_managed_kafka.handlers import KafkaHandler
from chargeback_assets.ecosystems.self_managed_kafka.queries import USAGE_QUERIES
from chargeback_assets.engine.calculate import allocate_line
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import UNALLOCATED, BillingLine, Resource, Window

from .settings_builders import CLUSTER_ID, kafka_settings

DAY = Window.for_day(date(2026, 2, 1))
IN, OUT = "bytes_in_per_principal", "bytes_out_per_principal"


def handler(*statics: str) -> KafkaHandler:
    identity_source: dict[str, Any] = {"source": "both" if statics else "prometheus"}
    if statics:
        identity_source["static_identities"] = [
            {"identity_id": s, "identity_type": "principal"} for s in statics
        ]
    return KafkaHandler(kafka_settings(identity_source=identity_source), "tenant-1")


def bill(product_type: str, total: str = "100.0000") -> BillingLine:
    """A line as the cost model makes it: constructed, total already quantized."""
    return BillingLine(
        ecosystem="self_managed_kafka",
        tenant_id="tenant-1",
        timestamp=DAY.start,
        resource_id=CLUSTER_ID,
        product_category="kafka",
        product_type=product_type,
        quantity=Decimal(1),
        unit_price=Decimal(total),
        total_cost=Decimal(total),
        provider_prorated=False,
    )


def allocate(kafka: KafkaHandler, product_type: str, usage: dict | None, resource: Resource | None = None):
    line = bill(product_type)
    view = InventoryView.build(DAY, [], [])
    resolution = kafka.resolve(line, view, usage)
    rows = allocate_line(
        line, kafka.allocator(product_type), resolution, window=DAY, resource=resource, usage=usage
    )
    assert sum(row.amount for row in rows) == line.total_cost
    return sorted(
        (
            row.identity_id,
            str(row.amount),
            str(row.cost_type),
            row.allocation_detail,
            row.metadata.get("chain_tier"),
        )
        for row in rows
    )


def usage(key: str, **bytes_by_principal: int) -> dict:
    return {key: {p: Decimal(v) for p, v in bytes_by_principal.items()}}


CASES = [
    (
        "29 ingress by bytes 700/300",
        handler(),
        NETWORK_INGRESS,
        usage(IN, alice=700, bob=300),
        [
            ("alice", "70.0000", "usage", "usage_ratio_allocation", 0),
            ("bob", "30.0000", "usage", "usage_ratio_allocation", 0),
        ],
    ),
    (
        "29 data only under egress: even over resource_active",
        handler("alice", "bob"),
        NETWORK_INGRESS,
        usage(OUT, alice=700, bob=300),
        [
            ("alice", "50.0000", "shared", "no_metrics_located", 1),
            ("bob", "50.0000", "shared", "no_metrics_located", 1),
        ],
    ),
    (
        "29 alice 0, resource_active bob",
        handler("bob"),
        NETWORK_INGRESS,
        usage(IN, alice=0),
        [("bob", "100.0000", "shared", "no_metrics_located", 1)],
    ),
    (
        "29 nothing: UNALLOCATED",
        handler(),
        NETWORK_INGRESS,
        None,
        [(UNALLOCATED, "100.0000", "shared", "no_identities_located", 2)],
    ),
    (
        "29 alice 0, bob > 0",
        handler(),
        NETWORK_INGRESS,
        usage(IN, alice=0, bob=5),
        [("bob", "100.0000", "usage", "usage_ratio_allocation", 0)],
    ),
    (
        "29 egress reads the egress key",
        handler(),
        NETWORK_EGRESS,
        usage(OUT, alice=1, bob=3) | usage(IN, alice=3, bob=1),
        [
            ("alice", "25.0000", "usage", "usage_ratio_allocation", 0),
            ("bob", "75.0000", "usage", "usage_ratio_allocation", 0),
        ],
    ),
    (
        "30 compute: metrics_derived a, b",
        handler("alice"),
        COMPUTE,
        usage(IN, a=1) | usage(OUT, b=9),
        [("a", "50.0000", "usage", None, 0), ("b", "50.0000", "usage", None, 0)],
    ),
    (
        "30 storage: only resource_active alice",
        handler("alice"),
        STORAGE,
        None,
        [("alice", "100.0000", "shared", "no_active_identities_located", 1)],
    ),
    (
        "30 compute: nobody",
        handler(),
        COMPUTE,
        {},
        [(UNALLOCATED, "100.0000", "shared", "no_identities_located", 2)],
    ),
]


@pytest.mark.parametrize(
    ("case", "kafka", "product_type", "day_usage", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_allocation(case, kafka, product_type, day_usage, expected) -> None:
    assert allocate(kafka, product_type, day_usage) == expected


def test_inactive_share_of_a_cluster_created_at_noon_goes_to_the_cluster() -> None:
    cluster = Resource(
        "self_managed_kafka", "tenant-1", CLUSTER_ID, "cluster", created_at=DAY.start + timedelta(hours=12)
    )
    rows = allocate(handler(), NETWORK_INGRESS, usage(IN, alice=3, bob=1), cluster)
    assert rows == [
        ("alice", "37.5000", "usage", "usage_ratio_allocation", 0),
        ("bob", "12.5000", "usage", "usage_ratio_allocation", 0),
        (CLUSTER_ID, "50.0000", "shared", "resource_inactive_fraction", None),
    ]


def test_metrics_fetch_failure_falls_back_to_configured_identities() -> None:
    """The usage tier declines and the engine marks the fallback rows `metrics_fetch_failed`."""
    kafka = handler("carol")
    line = bill(NETWORK_EGRESS, "10.0000")
    resolution = kafka.resolve(line, InventoryView.build(DAY, [], []), None)
    rows = allocate_line(
        line, kafka.allocator(NETWORK_EGRESS), resolution, window=DAY, metrics_fetch_failed=True
    )
    assert [(r.identity_id, r.amount, r.allocation_detail) for r in rows] == [
        ("carol", Decimal("10.0000"), "metrics_fetch_failed")
    ]


def test_resolution_scopes_and_principal_identities() -> None:
    kafka = KafkaHandler(
        kafka_settings(
            identity_source={
                "source": "both",
                "principal_to_team": {"User:alice": "team-data"},
                "static_identities": [{"identity_id": "team-ops", "identity_type": "team", "team": "ops"}],
            }
        ),
        "tenant-1",
    )
    resolution = kafka.resolve(
        bill(COMPUTE), InventoryView.build(DAY, [], []), usage(IN, **{"User:alice": 5})
    )
    (alice,) = resolution.metrics_derived.values()
    assert (alice.identity_id, alice.identity_type, alice.display_name) == (
        "User:alice",
        "principal",
        "team-data",
    )
    assert resolution.resource_active.ids() == ["team-ops"]
    assert resolution.resource_active["team-ops"].metadata == {"team": "ops"}


def test_metric_queries_for_every_product_type_unless_identities_are_static_only() -> None:
    prometheus = handler()
    static_only = KafkaHandler(
        kafka_settings(
            identity_source={
                "source": "static",
                "static_identities": [{"identity_id": "a", "identity_type": "user"}],
            }
        ),
        "tenant-1",
    )
    assert prometheus.service_type == "kafka"
    assert prometheus.product_types == frozenset(PRODUCT_TYPES)
    for product_type in PRODUCT_TYPES:
        assert prometheus.metric_queries(product_type) == USAGE_QUERIES
        assert static_only.metric_queries(product_type) == ()
    assert [q.subject_label for q in USAGE_QUERIES] == ["principal", "principal"]
    with pytest.raises(ValueError, match="not product type 'KAFKA_NUM_CKUS'"):
        prometheus.allocator("KAFKA_NUM_CKUS")
