"""Allocation of generic metrics lines through the real handler and chains (scenario 33)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from chargeback_assets.ecosystems.generic_metrics.handlers import GenericHandler
from chargeback_assets.engine.calculate import allocate_line
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import UNALLOCATED, BillingLine, Identity, MetricQuery, Window

from .settings_builders import CLUSTER_ID, DISCOVERY, OUT_BY_PRINCIPAL, fixed, generic_settings, usage_ratio

DAY = Window.for_day(date(2026, 2, 1))


def handler(*statics: str, source: str = "prometheus") -> GenericHandler:
    identity_source: dict[str, Any] = {"source": source, "discovery_query": DISCOVERY}
    if statics:
        identity_source["static_identities"] = [{"identity_id": s, "identity_type": "user"} for s in statics]
    settings = generic_settings(fixed("even"), usage_ratio(fixed("ratio")), identity_source=identity_source)
    return GenericHandler(settings, "t-1")


def allocate(generic: GenericHandler, product_type: str, usage: dict | None) -> list[tuple]:
    line = BillingLine(
        "generic_metrics",
        "t-1",
        DAY.start,
        CLUSTER_ID,
        "compute",
        product_type,
        Decimal(1),
        Decimal("100.0000"),
        Decimal("100.0000"),
        provider_prorated=False,
    )
    resolution = generic.resolve(line, InventoryView.build(DAY, [], []), usage)
    rows = allocate_line(line, generic.allocator(product_type), resolution, window=DAY, usage=usage)
    assert sum(row.amount for row in rows) == line.total_cost
    return sorted(
        (r.identity_id, str(r.amount), str(r.cost_type), r.allocation_detail, r.metadata["chain_tier"])
        for r in rows
    )


def seen(key: str, **values: int) -> dict:
    return {key: {subject: Decimal(v) for subject, v in values.items()}}


CASES = [
    (
        "33 even_split over merged_active a, b",
        handler("a", source="both"),
        "even",
        seen("discovery", b=1),
        [
            ("a", "50.0000", "shared", "even_split_allocation", 0),
            ("b", "50.0000", "shared", "even_split_allocation", 0),
        ],
    ),
    (
        "33 even_split with nobody",
        handler(),
        "even",
        None,
        [(UNALLOCATED, "100.0000", "shared", "no_identities_located", 1)],
    ),
    (
        "usage_ratio by alloc_ratio",
        handler("a"),
        "ratio",
        seen("alloc_ratio", a=1, b=3),
        [
            ("a", "25.0000", "usage", "usage_ratio_allocation", 0),
            ("b", "75.0000", "usage", "usage_ratio_allocation", 0),
        ],
    ),
    (
        "33 usage_ratio, no metrics, identities",
        handler("a", "b", source="both"),
        "ratio",
        None,
        [
            ("a", "50.0000", "shared", "no_metrics_located", 1),
            ("b", "50.0000", "shared", "no_metrics_located", 1),
        ],
    ),
    (
        "33 usage_ratio, neither",
        handler(),
        "ratio",
        None,
        [(UNALLOCATED, "100.0000", "shared", "no_identities_located", 2)],
    ),
]


@pytest.mark.parametrize(
    ("case", "generic", "product_type", "usage", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_allocation(case, generic, product_type, usage, expected) -> None:
    assert allocate(generic, product_type, usage) == expected


def test_metric_queries_per_strategy() -> None:
    generic = handler()
    assert generic.service_type == "generic"
    assert generic.product_types == frozenset({"even", "ratio"})
    assert generic.metric_queries("even") == (
        MetricQuery("discovery", DISCOVERY, ("principal",), subject_label="principal"),
    )
    assert generic.metric_queries("ratio") == (
        MetricQuery("alloc_ratio", OUT_BY_PRINCIPAL, ("principal",), subject_label="principal"),
    )
    static = handler("a", source="static")
    assert static.metric_queries("even") == ()
    with pytest.raises(ValueError, match="no cost type named 'other'"):
        generic.allocator("other")


def test_with_a_prometheus_source_statics_apply_only_when_the_inventory_fell_back_to_them() -> None:
    generic = handler("a")
    line = BillingLine(
        "generic_metrics",
        "t-1",
        DAY.start,
        CLUSTER_ID,
        "compute",
        "even",
        Decimal(1),
        Decimal("1.0000"),
        Decimal("1.0000"),
        provider_prorated=False,
    )
    fell_back = InventoryView.build(DAY, [], [Identity("generic_metrics", "t-1", "a", "user")])
    assert generic.resolve(line, InventoryView.build(DAY, [], []), None).resource_active.ids() == []
    assert generic.resolve(line, fell_back, None).resource_active.ids() == ["a"]
