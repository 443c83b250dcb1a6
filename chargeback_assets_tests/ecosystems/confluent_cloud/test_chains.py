"""The product-type table: every type has its chain, chains read what handlers fetch, and the tiers that a
handler's own resolution never reaches (spec §6) behave as specified.

Scenarios whose resolution no handler produces (a connector or ksqlDB cluster with no identity, Flink with
active identities but no CFU) are run with the resolution given directly, as an identity override would;
the allocator is still the claiming handler's, and the tenant period still comes from a real inventory.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.confluent_cloud import chains
from chargeback_assets.ecosystems.confluent_cloud.billing import cost_rows_to_lines
from chargeback_assets.engine.allocation import AllocationError
from chargeback_assets.engine.calculate import INACTIVE_DETAIL, allocate_line, line_window, with_tenant_period
from chargeback_assets.engine.models import UTC, IdentityResolution, IdentitySet
from chargeback_assets_tests.contracts import EXAMPLES
from chargeback_assets_tests.ecosystems.confluent_cloud.builders import (
    DAY,
    HANDLERS,
    TENANT,
    UNALLOCATED_IDENTITY,
    allocate,
    api_key,
    even_rows,
    ident,
    keys_on,
    line,
    res,
    resolve,
    sas,
    table,
    terminal_row,
    usage,
)

EXAMPLE = EXAMPLES / "authored" / "billing-costs.page1.example.json"
NO_ACTIVE = "no_active_identities_located"


def active(*ids: str) -> IdentityResolution:
    return IdentityResolution(resource_active=IdentitySet(sas(*ids)))


# --- the table ----------------------------------------------------------------------------------------------

SPEC_PRODUCT_TYPES = {
    "kafka": "KAFKA_NUM_CKU KAFKA_NUM_CKUS KAFKA_NETWORK_READ KAFKA_NETWORK_WRITE KAFKA_PARTITION KAFKA_BASE "
    "KAFKA_STORAGE",
    "schema_registry": "SCHEMA_REGISTRY GOVERNANCE_BASE NUM_RULES",
    "connector": "CONNECT_NUM_TASKS CONNECT_THROUGHPUT CUSTOM_CONNECT_NUM_TASKS CUSTOM_CONNECT_THROUGHPUT "
    "CONNECT_CAPACITY CUSTOM_CONNECT_PLUGIN",
    "ksqldb": "KSQL_NUM_CSU KSQL_NUM_CSUS",
    "flink": "FLINK_NUM_CFU FLINK_NUM_CFUS",
    "org_wide": "AUDIT_LOG_READ SUPPORT",
    "default": "TABLEFLOW_DATA_PROCESSED TABLEFLOW_NUM_TOPICS TABLEFLOW_STORAGE CLUSTER_LINKING_PER_LINK "
    "CLUSTER_LINKING_READ CLUSTER_LINKING_WRITE",
}


def test_the_table_holds_every_product_type_of_the_spec_under_its_handler() -> None:
    expected = {pt: service for service, types in SPEC_PRODUCT_TYPES.items() for pt in types.split()}
    assert {pt: service for pt, (service, _) in chains.PRODUCTS.items()} == expected


@pytest.mark.parametrize(
    ("singular", "plural"),
    [
        ("KAFKA_NUM_CKU", "KAFKA_NUM_CKUS"),
        ("KSQL_NUM_CSU", "KSQL_NUM_CSUS"),
        ("FLINK_NUM_CFU", "FLINK_NUM_CFUS"),
    ],
)
def test_both_spellings_share_one_allocator(singular, plural) -> None:
    assert chains.model_for(singular) is chains.model_for(plural)


def test_every_line_of_the_authored_billing_example_allocates_in_full() -> None:
    """Every line type of the example bill has a chain except PROMO_CREDIT, which the fallback takes whole."""
    lines = cost_rows_to_lines(json.loads(EXAMPLE.read_text())["data"], TENANT, DAY)
    assert {bill.product_type for bill in lines} - set(chains.PRODUCTS) == {"PROMO_CREDIT"}
    for bill in lines:
        rows = allocate(bill, sas("sa-1")).rows
        assert sum(r.amount for r in rows) == bill.total_cost
        if bill.product_type == "PROMO_CREDIT":
            assert table(rows) == [
                (bill.resource_id, bill.total_cost, "shared", "unknown", "using_unknown_allocator", None)
            ]


KAFKA_QUERIES = {
    "KAFKA_NUM_CKU": ("bytes_in", "bytes_out"),
    "KAFKA_NUM_CKUS": ("bytes_in", "bytes_out"),
    "KAFKA_NETWORK_READ": ("bytes_out",),
    "KAFKA_NETWORK_WRITE": ("bytes_in",),
    "FLINK_NUM_CFU": ("flink_cfu_primary", "flink_cfu_fallback"),
    "FLINK_NUM_CFUS": ("flink_cfu_primary", "flink_cfu_fallback"),
}


@pytest.mark.parametrize("product_type", sorted(chains.PRODUCTS))
def test_metric_queries_are_exactly_what_the_chain_reads(product_type) -> None:
    """KAFKA_PARTITION's chain is keyed on `partition_count`, which no query produces: never fetched."""
    queried = tuple(q.key for q in HANDLERS[product_type].metric_queries(product_type))
    assert queried == KAFKA_QUERIES.get(product_type, ())
    read = chains.metric_keys(chains.model_for(product_type))
    assert read == (("partition_count",) if product_type == "KAFKA_PARTITION" else queried)


# --- tiers no handler resolution reaches -------------------------------------------------------------------


def test_s15_cku_ratios_that_do_not_sum_to_one_fail_at_allocation() -> None:
    params = {"kafka_cku_usage_ratio": 0.80, "kafka_cku_shared_ratio": 0.30}
    with pytest.raises(AllocationError, match=r"ratios must sum to 1\.0, got 1\.1"):
        allocate(line("KAFKA_NUM_CKU", "100"), keys_on("lkc-abc", "sa-1"), params=params)


CONNECTOR_CASES = [
    pytest.param("CONNECT_CAPACITY", "100", active("sa-1", "sa-2"), [],
                 even_rows(("sa-1", "50"), ("sa-2", "50")), id="s24-capacity-shared"),
    pytest.param("CONNECT_NUM_TASKS", "100", active("sa-1", "sa-2"), [],
                 even_rows(("sa-1", "50"), ("sa-2", "50"), cost_type="usage"), id="s24-tasks-usage"),
    pytest.param("CONNECT_THROUGHPUT", "10", active("sa-1", "sa-2", "sa-3"), [],
                 even_rows(("sa-1", "3.3334"), ("sa-2", "3.3333"), ("sa-3", "3.3333"), cost_type="usage"),
                 id="s24-tasks-ten-over-three"),
    pytest.param("CONNECT_CAPACITY", "100", IdentityResolution(), sas("sa-1", "sa-2"),
                 [terminal_row("connector-xyz", "100", 1)], id="s25-no-tenant-smear"),
    pytest.param("CUSTOM_CONNECT_NUM_TASKS", "100", IdentityResolution(), sas("sa-1"),
                 [terminal_row("connector-xyz", "100", 1)], id="s25-no-tenant-smear-tasks"),
]  # fmt: skip


@pytest.mark.parametrize(("product_type", "total", "resolution", "identities", "expected"), CONNECTOR_CASES)
def test_s24_s25_connector_tiers(product_type, total, resolution, identities, expected) -> None:
    bill = line(product_type, total, "connector-xyz")
    assert table(allocate(bill, identities, resolution=resolution).rows) == expected


KSQL_TENANT_CASES = [
    pytest.param(
        "100",
        [ident("user-owner", "user"), UNALLOCATED_IDENTITY],
        even_rows(("user-owner", "100"), detail=NO_ACTIVE, tier=1),
        id="s27-tenant-user-not-unallocated",
    ),
    pytest.param(
        "100",
        [api_key("api-key-1", "sa-x"), UNALLOCATED_IDENTITY],
        [terminal_row("lksqlc-1", "100", 2)],
        id="s27-only-keys-and-system-go-to-resource",
    ),
    pytest.param(
        "90",
        sas("sa-1", "sa-2", "sa-3"),
        even_rows(("sa-1", "30"), ("sa-2", "30"), ("sa-3", "30"), detail=NO_ACTIVE, tier=1),
        id="s27-tenant-three",
    ),
]


@pytest.mark.parametrize(("total", "identities", "expected"), KSQL_TENANT_CASES)
def test_s27_ksqldb_tenant_tiers(total, identities, expected) -> None:
    bill = line("KSQL_NUM_CSU", total, "lksqlc-1")
    assert table(allocate(bill, identities, resolution=IdentityResolution()).rows) == expected


@pytest.mark.parametrize(
    ("total", "ids", "amount"),
    [
        pytest.param("100", ("sa-1", "sa-2"), "50", id="s32-two"),
        pytest.param("99", ("sa-1", "sa-2", "sa-3"), "33", id="s32-three"),
    ],
)
def test_s32_flink_active_without_cfu(total, ids, amount) -> None:
    bill = line("FLINK_NUM_CFU", total, "lfcp-pool-1")
    rows = allocate(bill, sas(*ids), resolution=active(*ids)).rows
    expected = even_rows(
        *((i, amount) for i in ids), cost_type="usage", detail="no_usage_for_active_identities"
    )
    assert table(rows) == [(*row[:5], 1) for row in expected]


def test_usage_tier_declines_when_metrics_failed() -> None:
    """A failed fetch is never read as usage: the usage tier declines even though the context has usage, the
    chain answers from tier 1, and the engine marks every row `metrics_fetch_failed` so it is never silent.
    """
    bill = line("KAFKA_NETWORK_READ", "100")
    handler = HANDLERS[bill.product_type]
    resolution = IdentityResolution(
        resource_active=IdentitySet(sas("sa-1", "sa-2")),
        context={chains.USAGE_BY_OWNER: {"bytes_out": {"sa-1": Decimal(9)}}},
    )
    rows = allocate_line(
        bill,
        handler.allocator(bill.product_type),
        with_tenant_period(resolution, IdentitySet()),
        window=line_window(bill),
        metrics_fetch_failed=True,
    )
    assert table(rows) == even_rows(("sa-1", "50"), ("sa-2", "50"), detail="metrics_fetch_failed", tier=1)


# --- scenario 39: active fraction ---------------------------------------------------------------------------

NOON = datetime(2026, 2, 1, 12, tzinfo=UTC)
THIRDS = (("sa-1", "33.3334"), ("sa-2", "33.3333"), ("sa-3", "33.3333"))
HALF_THIRDS = (("sa-1", "16.6666"), ("sa-2", "16.6667"), ("sa-3", "16.6667"))
LIFETIMES = [
    pytest.param({"created_at": NOON}, HALF_THIRDS, "50", id="s39-created-noon"),
    pytest.param({"deleted_at": NOON}, HALF_THIRDS, "50", id="s39-deleted-noon"),
    pytest.param({"created_at": datetime(2026, 2, 3, tzinfo=UTC)}, (), "100", id="s39-created-after-window"),
    pytest.param({}, THIRDS, None, id="s39-no-created-at"),
]


@pytest.mark.parametrize(("lifetime", "active_share", "inactive_share"), LIFETIMES)
def test_s39_confluent_lines_are_allocated_in_full(lifetime, active_share, inactive_share) -> None:
    """Our rule (DESIGN.md §6), not the reference's: Confluent already prorated its bill for the resource's
    lifetime, so scaling again by the active fraction would under-charge (the reference dropped the rest).
    A Confluent line for a resource created at 12:00 therefore charges all $100 to the active identities.
    """
    cluster = res("lkc-abc", "kafka_cluster", **lifetime)
    bill = line("KAFKA_BASE", "100")
    rows = allocate(bill, keys_on("lkc-abc", "sa-1", "sa-2", "sa-3"), resource=cluster).rows
    assert table(rows) == even_rows(*THIRDS, detail="no_metrics_located")


@pytest.mark.parametrize(("lifetime", "active_share", "inactive_share"), LIFETIMES)
def test_s39_constructed_lines_charge_the_inactive_share_to_the_resource(
    lifetime, active_share, inactive_share
) -> None:
    """Only a constructed line (cost model, not provider-prorated) is scaled by the active fraction; the
    inactive share goes to the resource itself so the line still sums to its bill (the reference lost it).
    Created at 12:00: $50 over three identities (16.6666 / 16.6667 / 16.6667) and $50 to the cluster.
    """
    cluster = res("lkc-abc", "kafka_cluster", **lifetime)
    bill = line("KAFKA_BASE", "100", provider_prorated=False)
    rows = allocate(bill, keys_on("lkc-abc", "sa-1", "sa-2", "sa-3"), resource=cluster).rows
    inactive = (
        [] if inactive_share is None else [terminal_row("lkc-abc", inactive_share, None, INACTIVE_DETAIL)]
    )
    assert table(rows) == even_rows(*active_share, detail="no_metrics_located") + inactive


def test_s39_resource_absent_from_the_window_means_full_cost() -> None:
    """Deleted before the window: the inventory of that window has no such resource, so nothing is scaled."""
    cluster = res("lkc-abc", "kafka_cluster", deleted_at=datetime(2026, 1, 31, tzinfo=UTC))
    bill = line("KAFKA_BASE", "90", provider_prorated=False)
    inventory, _ = resolve(bill, (), [cluster])
    rows = allocate(bill, sas("sa-1"), [cluster], resource=inventory.resource("lkc-abc")).rows
    assert table(rows) == even_rows(("sa-1", "90"), detail="no_metrics_no_active_identities_located", tier=1)


def test_unknown_product_fallback_ignores_identities_and_usage() -> None:
    bill = line("KAFKA_REST_PRODUCE", "7", "lkc-abc")
    rows = allocate(bill, keys_on("lkc-abc", "sa-1"), metrics=usage(bytes_in={"sa-1": 5})).rows
    assert table(rows) == [("lkc-abc", Decimal(7), "shared", "unknown", "using_unknown_allocator", None)]
