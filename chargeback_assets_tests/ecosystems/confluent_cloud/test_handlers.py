"""Identity resolution of the Confluent Cloud handlers, end to end through their chains (spec §4, §6).

Every case builds an inventory, lets the claiming handler resolve the line, and allocates it with the real
chain; `allocate_line` proves the rows sum to the bill. Ids of scenarios follow ccloud-plugin-spec.md §6.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.confluent_cloud import chains
from chargeback_assets.ecosystems.confluent_cloud.handlers import (
    KafkaHandler,
    claims_by_product_type,
    confluent_cloud_handlers,
)
from chargeback_assets.ecosystems.confluent_cloud.sentinels import type_from_prefix
from chargeback_assets.engine.models import UTC, AllocationContext, Identity
from chargeback_assets_tests.ecosystems.confluent_cloud.builders import (
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
    statement,
    table,
    terminal_row,
    usage,
    usage_rows,
)

NO_METRICS = "no_metrics_located"
NO_ACTIVE = "no_active_identities_located"

KAFKA_NETWORK_CASES = [
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        usage(bytes_out={"sa-1": 100, "sa-2": 300}),
        usage_rows(("sa-1", "25"), ("sa-2", "75")),
        id="s05-read-usage-ratio",
    ),
    pytest.param(
        line("KAFKA_NETWORK_WRITE", "100"),
        keys_on("lkc-abc", "sa-1"),
        usage(bytes_out={"sa-1": 500}),
        even_rows(("sa-1", "100"), detail=NO_METRICS, tier=1),
        id="s06-write-ignores-bytes-out",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        keys_on("lkc-abc", "sa-1"),
        usage(bytes_in={"sa-1": 500}),
        even_rows(("sa-1", "100"), detail=NO_METRICS, tier=1),
        id="s06-read-ignores-bytes-in",
    ),
    pytest.param(
        line("KAFKA_NETWORK_WRITE", "100"),
        sas("sa-writer", "sa-reader"),
        usage(bytes_in={"sa-writer": 100, "sa-reader": 0}),
        usage_rows(("sa-writer", "100")),
        id="s07-write-charges-the-writer",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        sas("sa-writer", "sa-reader"),
        usage(bytes_out={"sa-writer": 0, "sa-reader": 100}),
        usage_rows(("sa-reader", "100")),
        id="s07-read-charges-the-reader",
    ),
    pytest.param(
        line("KAFKA_NETWORK_WRITE", "100"),
        [*sas("sa-abc"), api_key("key-1", "sa-abc"), api_key("key-2", "sa-abc")],
        usage(bytes_in={"key-1": 200, "key-2": 300}),
        usage_rows(("sa-abc", "100")),
        id="s08-api-keys-map-to-one-owner",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        [*sas("sa-1"), *keys_on("lkc-abc", "sa-2")],
        usage(bytes_out={"sa-1": 0}),
        even_rows(("sa-2", "100"), detail=NO_METRICS, tier=1),
        id="s09-zero-usage-is-no-usage",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        sas("sa-3"),
        None,
        even_rows(("sa-3", "100"), detail=NO_ACTIVE, tier=2),
        id="s10-tenant-period",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        [*sas("sa-1"), api_key("key-xyz", None, "lkc-other")],
        None,
        even_rows(("sa-1", "100"), detail=NO_ACTIVE, tier=2),
        id="s10-tenant-period-skips-api-keys",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100", "lkc-terminal"),
        [],
        None,
        [terminal_row("lkc-terminal", "100", 3)],
        id="s11-terminal-to-cluster",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        [
            *sas("sa-owner-1", "sa-owner-2"),
            api_key("api-key-1", "sa-owner-1"),
            api_key("api-key-2", "sa-owner-2"),
        ],
        usage(bytes_out={"sa-owner-1": 800, "sa-owner-2": 200}),
        usage_rows(("sa-owner-1", "80"), ("sa-owner-2", "20")),
        id="s12-handler-e2e",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        [
            *sas("sa-owner-1", "sa-owner-2"),
            api_key("api-key-1", "sa-owner-1"),
            api_key("api-key-2", "sa-owner-2"),
        ],
        usage(bytes_out={"api-key-1": 800, "api-key-2": 200}),
        usage_rows(("sa-owner-1", "80"), ("sa-owner-2", "20")),
        id="s12-handler-e2e-key-principals",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "700"),
        sas("sa-1", "sa-2"),
        usage(bytes_out={"sa-1": sum((100, 200, 300)), "sa-2": sum((50, 50))}),
        usage_rows(("sa-1", "600"), ("sa-2", "100")),
        id="s13-range-sums",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "6000"),
        sas("sa-A", "sa-B"),
        usage(bytes_out={"sa-A": 100, "sa-B": sum([100] * 59)}),
        usage_rows(("sa-A", "100"), ("sa-B", "5900")),
        id="s13-bursty",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "10"),
        sas("sa-a", "sa-b", "sa-c"),
        usage(bytes_out={"sa-c": 1, "sa-a": 1, "sa-b": 1}),
        usage_rows(("sa-a", "3.3334"), ("sa-b", "3.3333"), ("sa-c", "3.3333")),
        id="s04-usage-ratio-lowest-id-takes-remainder-whatever-the-series-order",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "100"),
        sas("sa-a", "sa-b", "sa-c"),
        usage(bytes_out={"sa-a": 333, "sa-b": 333, "sa-c": 334}),
        usage_rows(("sa-a", "33.3000"), ("sa-b", "33.3000"), ("sa-c", "33.4000")),
        id="s04-usage-ratio-333-333-334",
    ),
]

KAFKA_BASE_CASES = [
    pytest.param(
        line("KAFKA_BASE", "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        None,
        even_rows(("sa-1", "50"), ("sa-2", "50"), detail=NO_METRICS),
        id="s21-base-active",
    ),
    pytest.param(
        line("KAFKA_STORAGE", "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        None,
        even_rows(("sa-1", "50"), ("sa-2", "50"), detail=NO_METRICS),
        id="s21-storage-active",
    ),
    pytest.param(
        line("KAFKA_BASE", "100"),
        sas("sa-1", "sa-2"),
        None,
        even_rows(("sa-1", "50"), ("sa-2", "50"), detail="no_metrics_no_active_identities_located", tier=1),
        id="s21-base-tenant",
    ),
    pytest.param(
        line("KAFKA_BASE", "100"),
        [],
        None,
        [terminal_row("lkc-abc", "100", 2, method="to_resource")],
        id="s21-base-to-resource",
    ),
    pytest.param(
        line("KAFKA_PARTITION", "100"),
        keys_on("lkc-abc", "sa-1"),
        usage(bytes_in={"sa-1": 500}, bytes_out={"sa-1": 500}),
        even_rows(("sa-1", "100"), detail=NO_METRICS, tier=1),
        id="s22-partition-never-uses-metrics",
    ),
]

SCHEMA_REGISTRY_CASES = [
    pytest.param(
        line("SCHEMA_REGISTRY", "10", "lsrc-xyz"),
        keys_on("lsrc-xyz", "sa-1", "sa-2", "sa-3"),
        even_rows(("sa-1", "3.3334"), ("sa-2", "3.3333"), ("sa-3", "3.3333"), cost_type="usage"),
        id="s01-even-split-first-sorted-takes-remainder",
    ),
    pytest.param(
        line("SCHEMA_REGISTRY", "2", "lsrc-xyz"),
        keys_on("lsrc-xyz", "sa-3", "sa-1", "sa-2"),
        even_rows(("sa-1", "0.6666"), ("sa-2", "0.6667"), ("sa-3", "0.6667"), cost_type="usage"),
        id="s02-negative-remainder-to-first",
    ),
    pytest.param(
        line("GOVERNANCE_BASE", "1", "lsrc-xyz"),
        keys_on("lsrc-xyz", *(f"sa-{n}" for n in range(1, 8))),
        even_rows(
            *((f"sa-{n}", "0.1428") for n in (1, 2, 3)),
            *((f"sa-{n}", "0.1429") for n in (4, 5, 6, 7)),
            cost_type="usage",
        ),
        id="s02-one-over-seven",
    ),
    pytest.param(
        line("SCHEMA_REGISTRY", "50", "lsrc-xyz"),
        [*sas("sa-owner-1"), api_key("api-key-sr", "sa-owner-1", "lsrc-xyz")],
        even_rows(("sa-owner-1", "50"), cost_type="usage"),
        id="s23-api-key-owner",
    ),
    pytest.param(
        line("NUM_RULES", "50", "lsrc-xyz"),
        keys_on("lsrc-xyz", "sa-1", "sa-2"),
        even_rows(("sa-1", "25"), ("sa-2", "25"), cost_type="usage"),
        id="s23-two-active",
    ),
    pytest.param(
        line("SCHEMA_REGISTRY", "50", "lsrc-xyz"),
        [*sas("sa-tenant"), api_key("key-elsewhere", "sa-tenant", "lkc-abc")],
        even_rows(("sa-tenant", "50"), detail=NO_ACTIVE, tier=1),
        id="s23-tenant-period",
    ),
    pytest.param(
        line("SCHEMA_REGISTRY", "50", "lsrc-xyz"),
        [],
        [terminal_row("lsrc-xyz", "50", 2)],
        id="s23-terminal",
    ),
]


@pytest.mark.parametrize(
    ("bill", "identities", "metrics", "expected"), KAFKA_NETWORK_CASES + KAFKA_BASE_CASES
)
def test_kafka_scenarios(bill, identities, metrics, expected) -> None:
    assert table(allocate(bill, identities, (), metrics).rows) == expected


@pytest.mark.parametrize(("bill", "identities", "expected"), SCHEMA_REGISTRY_CASES)
def test_schema_registry_scenarios(bill, identities, expected) -> None:
    assert table(allocate(bill, identities).rows) == expected


def test_s03_usage_ratio_remainder_on_an_off_grid_split() -> None:
    """Scenario 3 allocates a split of 1.00005 (not on the 0.0001 grid): the quantized total 1.0001 is spread.

    A whole line must sum to its bill, so an off-grid split only reaches a chain directly; this drives the
    WRITE chain with the Kafka handler's own resolution.
    """
    bill = line("KAFKA_NETWORK_WRITE", "1.00005")
    metrics = usage(bytes_in={"u-1": 60, "u-2": 40})
    _, resolution = resolve(bill, [ident("u-1", "user"), ident("u-2", "user")], (), metrics)
    ctx = AllocationContext(bill.timestamp, bill, resolution, Decimal("1.00005"), usage=metrics)
    rows = KafkaHandler().allocator("KAFKA_NETWORK_WRITE")(ctx).rows
    assert table(rows) == usage_rows(("u-1", "0.6001"), ("u-2", "0.4000"))
    assert sum(r.amount for r in rows) == Decimal("1.0001")


CKU = "KAFKA_NUM_CKU"


def cku_rows(*index_and_rows):
    """Expected CKU rows: each (composition index, rows) group gets that index appended."""
    return [(*row, index) for index, group in index_and_rows for row in group]


CKU_CASES = [
    pytest.param(
        line(CKU, "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        usage(bytes_in={"sa-1": 300}, bytes_out={"sa-2": 700}),
        None,
        [
            (0, usage_rows(("sa-1", "21"), ("sa-2", "49"))),
            (1, even_rows(("sa-1", "15"), ("sa-2", "15"), cost_type="usage")),
        ],
        id="s14-70-30",
    ),
    pytest.param(
        line("KAFKA_NUM_CKUS", "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        usage(bytes_in={"sa-1": 300}, bytes_out={"sa-2": 700}),
        {"kafka_cku_usage_ratio": "0.60", "kafka_cku_shared_ratio": "0.40"},
        [
            (0, usage_rows(("sa-1", "18"), ("sa-2", "42"))),
            (1, even_rows(("sa-1", "20"), ("sa-2", "20"), cost_type="usage")),
        ],
        id="s15-params-60-40",
    ),
    pytest.param(
        line(CKU, "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        None,
        None,
        [
            (0, even_rows(("sa-1", "35"), ("sa-2", "35"), detail="no_usage_for_active_identities", tier=1)),
            (1, even_rows(("sa-1", "15"), ("sa-2", "15"), cost_type="usage")),
        ],
        id="s16-no-metrics",
    ),
    pytest.param(
        line(CKU, "100"),
        sas("sa-3"),
        None,
        None,
        [
            (0, even_rows(("sa-3", "70"), detail="no_metrics_no_active_identities_located", tier=2)),
            (1, even_rows(("sa-3", "30"), detail=NO_ACTIVE, tier=1)),
        ],
        id="s17-tenant-period",
    ),
    pytest.param(
        line(CKU, "100"),
        sas("sa-a", "sa-b", "sa-c"),
        usage(bytes_in={"sa-a": 500, "sa-b": 300, "sa-c": 200}),
        None,
        [
            (0, usage_rows(("sa-a", "35"), ("sa-b", "21"), ("sa-c", "14"))),
            (1, even_rows(("sa-a", "10"), ("sa-b", "10"), ("sa-c", "10"), cost_type="usage")),
        ],
        id="s19-doc-example",
    ),
    pytest.param(
        line(CKU, "100"),
        sas("sa-solo"),
        usage(bytes_out={"sa-solo": 1000}),
        None,
        [(0, usage_rows(("sa-solo", "70"))), (1, even_rows(("sa-solo", "30"), cost_type="usage"))],
        id="s20-single-identity",
    ),
    pytest.param(
        line(CKU, "100"),
        [*sas("sa-owner-1"), api_key("api-key-1", "sa-owner-1")],
        usage(bytes_in={"api-key-1": 7000}, bytes_out={"api-key-1": 3000}),
        None,
        [(0, usage_rows(("sa-owner-1", "70"))), (1, even_rows(("sa-owner-1", "30"), cost_type="usage"))],
        id="s20-e2e-api-key",
    ),
]


@pytest.mark.parametrize(("bill", "identities", "metrics", "params", "expected"), CKU_CASES)
def test_cku_scenarios(bill, identities, metrics, params, expected) -> None:
    rows = allocate(bill, identities, (), metrics, params=params).rows
    assert table(rows, "composition_index") == cku_rows(*expected)


def test_s14_cku_rows_carry_composition_ratio() -> None:
    rows = allocate(
        line(CKU, "100"),
        keys_on("lkc-abc", "sa-1", "sa-2"),
        (),
        usage(bytes_in={"sa-1": 300}, bytes_out={"sa-2": 700}),
    ).rows
    assert [(r.metadata["composition_ratio"], r.metadata.get("ratio")) for r in rows] == [
        (0.7, 0.3),
        (0.7, 0.7),
        (0.3, None),
        (0.3, None),
    ]


def test_s18_cku_without_identities_sums_two_resource_rows_into_one_dimension() -> None:
    """Both CKU parts end on the cluster with the same dimension (70 + 30).

    The reference stored rows last-write-wins per dimension and kept only 30; our rule (DESIGN.md §6) sums
    rows of one dimension, so the cluster is charged the full 100.
    """
    rows = allocate(line(CKU, "100"), []).rows
    assert table(rows, "composition_index") == [
        (*terminal_row("lkc-abc", "70", 3), 0),
        (*terminal_row("lkc-abc", "30", 2), 1),
    ]
    by_dimension: dict[tuple, Decimal] = {}
    for row in rows:
        by_dimension[row.dimension] = by_dimension.get(row.dimension, Decimal(0)) + row.amount
    assert list(by_dimension.values()) == [Decimal("100")]


# --- connectors ---------------------------------------------------------------------------------------------


def connector(mode: str | None, **metadata: str) -> list:
    auth = {} if mode is None else {"kafka_auth_mode": mode}
    return [res("lcc-1", "connector", metadata={**auth, **metadata})]


CONNECTOR_CASES = [
    pytest.param(connector("SERVICE_ACCOUNT", kafka_service_account_id="sa-xxx"), sas("sa-xxx"), "sa-xxx",
                 "service_account", id="s26-service-account"),
    pytest.param(connector("KAFKA_API_KEY", kafka_api_key="key-1"),
                 [*sas("sa-owner-1"), api_key("key-1", "sa-owner-1", "lkc-abc")], "sa-owner-1",
                 "service_account", id="s26-api-key-owner"),
    pytest.param(connector("UNKNOWN"), [], "lcc-1", "connector_credentials", id="s26-unknown-mode"),
    pytest.param(connector(None), [], "lcc-1", "connector_credentials", id="s26-missing-mode"),
    pytest.param(connector("KAFKA_API_KEY", kafka_api_key="****"), [], "connector_api_key_masked",
                 "connector_credentials", id="s26-masked-key"),
    pytest.param(connector("KAFKA_API_KEY", kafka_api_key=""), [], "connector_credentials_unknown",
                 "connector_credentials", id="s26-empty-key"),
    pytest.param(connector("KAFKA_API_KEY", kafka_api_key="key-gone"), [], "connector_api_key_not_found",
                 "connector_credentials", id="s26-key-not-in-inventory"),
    pytest.param(connector("KAFKA_API_KEY", kafka_api_key="key-1"), [api_key("key-1", None)],
                 "connector_credentials_unknown", "connector_credentials", id="s26-key-without-owner"),
    pytest.param(connector("SERVICE_ACCOUNT"), [], "connector_credentials_unknown", "connector_credentials",
                 id="s26-service-account-without-id"),
    pytest.param(connector("SERVICE_ACCOUNT", kafka_service_account_id="sa-unknown-999"), [],
                 "sa-unknown-999", "service_account", id="s26-service-account-not-in-inventory"),
    pytest.param([], [], "connector_credentials_masked", "connector_credentials", id="s26-missing-connector"),
]  # fmt: skip


@pytest.mark.parametrize(("resources", "identities", "charged", "charged_type"), CONNECTOR_CASES)
def test_s26_connector_credentials(resources, identities, charged, charged_type) -> None:
    outcome = allocate(line("CONNECT_CAPACITY", "75", "lcc-1"), identities, resources)
    assert table(outcome.rows) == even_rows((charged, "75"))
    identity = outcome.resolution.resource_active[charged]
    assert identity.identity_type == charged_type
    known = {i.identity_id for i in identities}
    assert (identity.metadata.get("sentinel") is True) == (charged not in known)


def test_s26_deleted_connector_still_resolves_its_credentials() -> None:
    """Credentials are not temporal: a connector deleted before the day still names who ran it."""
    gone = res(
        "lcc-1",
        "connector",
        deleted_at=datetime(2026, 1, 20, tzinfo=UTC),
        metadata={"kafka_auth_mode": "SERVICE_ACCOUNT", "kafka_service_account_id": "sa-xxx"},
    )
    rows = allocate(line("CONNECT_NUM_TASKS", "50", "lcc-1"), sas("sa-xxx"), [gone]).rows
    assert table(rows) == even_rows(("sa-xxx", "50"), cost_type="usage")


# --- ksqlDB -------------------------------------------------------------------------------------------------

KSQL_CASES = [
    pytest.param(
        line("KSQL_NUM_CSU", "100", "lksqlc-1", quantity="4"),
        [res("lksqlc-1", "ksqldb_cluster", owner_id="sa-ksql-owner")],
        sas("sa-ksql-owner"),
        "sa-ksql-owner",
        id="s27-owner",
    ),
    pytest.param(
        line("KSQL_NUM_CSUS", "50", "lksqlc-1", quantity="2"),
        [res("lksqlc-1", "ksqldb_cluster")],
        sas("sa-other"),
        "ksqldb_owner_unknown",
        id="s27-missing-owner",
    ),
    pytest.param(
        line("KSQL_NUM_CSU", "50", "lksqlc-1"),
        [res("lksqlc-1", "ksqldb_cluster", owner_id="ksqldb_owner_unknown")],
        [],
        "ksqldb_owner_unknown",
        id="s27-owner-unknown-from-gather",
    ),
    pytest.param(
        line("KSQL_NUM_CSU", "50", "lksqlc-1"),
        [],
        sas("sa-other"),
        "ksqldb_deleted_when_calc_started",
        id="s27-missing-cluster",
    ),
]


@pytest.mark.parametrize(("bill", "resources", "identities", "owner"), KSQL_CASES)
def test_s27_ksqldb_owner(bill, resources, identities, owner) -> None:
    outcome = allocate(bill, identities, resources)
    assert table(outcome.rows) == even_rows((owner, str(bill.total_cost)), cost_type="usage")
    assert outcome.resolution.resource_active.ids() == [owner]


# --- Flink --------------------------------------------------------------------------------------------------

POOL = "lfcp-pool-1"
ALICE_AND_BOB = [
    statement("stmt-alpha", "sa-alice"),
    statement("stmt-beta", "sa-bob"),
    statement("stmt-alpha", "sa-mallory", pool="lfcp-pool-0"),
]
FLINK_PEOPLE = sas("sa-alice", "sa-bob", "sa-mallory")


def test_s28_flink_e2e_cfu_ratio_matches_statements_of_the_pool_only() -> None:
    outcome = allocate(
        line("FLINK_NUM_CFU", "100", POOL),
        FLINK_PEOPLE,
        ALICE_AND_BOB,
        usage(flink_cfu_primary={"stmt-alpha": 60, "stmt-beta": 40}),
    )
    assert table(outcome.rows) == usage_rows(("sa-alice", "60.0000"), ("sa-bob", "40.0000"))
    assert outcome.resolution.metrics_derived.ids() == ["sa-alice", "sa-bob"]


@pytest.mark.parametrize(
    ("metrics", "weights"),
    [
        pytest.param(
            usage(flink_cfu_fallback={"stmt-alpha": "42.0"}), {"sa-alice": "42.0"}, id="s29-fallback"
        ),
        pytest.param(
            usage(
                flink_cfu_primary={"stmt-alpha": "10.0"},
                flink_cfu_fallback={"stmt-alpha": 42, "stmt-beta": 9},
            ),
            {"sa-alice": "10.0"},
            id="s29-primary-wins-never-both",
        ),
        pytest.param(
            usage(flink_cfu_primary={"stmt-alpha": 0}, flink_cfu_fallback={"stmt-beta": 5}),
            {"sa-bob": "5"},
            id="s29-primary-without-positive-rows-falls-back",
        ),
    ],
)
def test_s29_flink_metric_choice(metrics, weights) -> None:
    _, resolution = resolve(line("FLINK_NUM_CFUS", "100", POOL), FLINK_PEOPLE, ALICE_AND_BOB, metrics)
    assert resolution.context == {"stmt_owner_cfu": {k: Decimal(v) for k, v in weights.items()}}


def test_s29_flink_nothing_resolves_empty_and_falls_to_the_pool() -> None:
    outcome = allocate(line("FLINK_NUM_CFU", "100", POOL), [], [statement("stmt-done", "sa-x", stopped=True)])
    resolution = outcome.resolution
    assert (resolution.resource_active.ids(), resolution.metrics_derived.ids(), resolution.context) == (
        [],
        [],
        {},
    )
    assert table(outcome.rows) == [terminal_row(POOL, "100", 3)]


@pytest.mark.parametrize(
    ("total", "cfu", "expected"),
    [
        pytest.param("100", {"A": 3, "B": 1}, [("sa-a", "75"), ("sa-b", "25")], id="s30-3-to-1"),
        pytest.param("90", {"A": 2, "B": 1}, [("sa-a", "60"), ("sa-b", "30")], id="s30-2-to-1"),
        pytest.param(
            "33.33",
            {"A": 1, "B": 6, "C": 3},
            [("sa-a", "3.3330"), ("sa-b", "19.9980"), ("sa-c", "9.9990")],
            id="s30-1-6-3",
        ),
    ],
)
def test_s30_flink_cfu_ratios(total, cfu, expected) -> None:
    statements = [statement(name, f"sa-{name.lower()}") for name in ("A", "B", "C")]
    rows = allocate(
        line("FLINK_NUM_CFU", total, POOL),
        sas("sa-a", "sa-b", "sa-c"),
        statements,
        usage(flink_cfu_primary=cfu),
    ).rows
    assert table(rows) == usage_rows(*expected)


def test_s31_flink_without_metrics_weights_running_statements() -> None:
    statements = [
        statement("stmt-run", "sa-running"),
        *(statement(f"stmt-{n}", f"sa-{n}", stopped=True) for n in ("stopped", "completed", "failed")),
    ]
    outcome = allocate(line("FLINK_NUM_CFU", "100", POOL), sas("sa-running", "sa-stopped"), statements)
    assert outcome.resolution.context == {"stmt_owner_cfu": {"sa-running": Decimal(1)}}
    assert outcome.resolution.resource_active.ids() == ["sa-running"]
    assert table(outcome.rows) == usage_rows(("sa-running", "100"))


def test_s31_flink_statement_missing_from_inventory_goes_to_owner_unknown() -> None:
    outcome = allocate(
        line("FLINK_NUM_CFU", "100", POOL),
        FLINK_PEOPLE,
        ALICE_AND_BOB,
        usage(flink_cfu_primary={"stmt-alpha": 30, "stmt-ghost": 10}),
    )
    assert table(outcome.rows) == usage_rows(("flink_stmt_owner_unknown", "25"), ("sa-alice", "75"))
    sentinel = outcome.resolution.metrics_derived["flink_stmt_owner_unknown"]
    assert (sentinel.identity_type, sentinel.metadata) == ("flink_statement_owner", {"sentinel": True})


def test_s32_flink_tenant_period_when_nothing_runs() -> None:
    rows = allocate(line("FLINK_NUM_CFU", "100", POOL), sas("sa-tp-1", "sa-tp-2")).rows
    assert table(rows) == even_rows(("sa-tp-1", "50"), ("sa-tp-2", "50"), detail=NO_ACTIVE, tier=2)


# --- credentials and owners across time ---------------------------------------------------------------------
# Who a credential or an owner id names does not depend on the billed day: a key made after the day (or
# deleted before it) still belongs to its owner. Only membership is temporal (the tenant period, the keys
# that make an identity active on a resource).

BEFORE_THE_DAY = datetime(2026, 1, 15, tzinfo=UTC)
AFTER_THE_DAY = datetime(2026, 3, 1, tzinfo=UTC)


def lived(
    identity: Identity, *, created: datetime | None = None, deleted: datetime | None = None
) -> Identity:
    return replace(identity, created_at=created, deleted_at=deleted)


def test_connector_key_created_after_the_billed_day_charges_its_owner_on_both_days() -> None:
    """The issue's reproduction: a service account of 2025 owns key K on lkc-1, made 2026-01-02 00:00Z; the
    connector runs on K. CONNECT_CAPACITY of 2026-01-01 and of 2026-01-02 are both the service account's."""
    people = [
        lived(ident("sa-1"), created=datetime(2025, 3, 1, tzinfo=UTC)),
        lived(api_key("K", "sa-1", "lkc-1"), created=datetime(2026, 1, 2, tzinfo=UTC)),
    ]
    runs_on_k = res(
        "lcc-1",
        "connector",
        parent_id="lkc-1",
        metadata={"kafka_auth_mode": "KAFKA_API_KEY", "kafka_api_key": "K"},
    )
    for day in (date(2026, 1, 1), date(2026, 1, 2)):
        rows = allocate(line("CONNECT_CAPACITY", "2.4000", "lcc-1", day=day), people, [runs_on_k]).rows
        assert [(r.identity_id, str(r.amount)) for r in rows] == [("sa-1", "2.4000")], day


ACROSS_TIME_CASES = [
    pytest.param(
        line("CONNECT_CAPACITY", "2.4000", "lcc-1"),
        [*sas("sa-owner"), lived(api_key("key-old", "sa-owner"), deleted=BEFORE_THE_DAY)],
        connector("KAFKA_API_KEY", kafka_api_key="key-old"),
        None,
        "sa-owner",
        id="connector-key-deleted-before-the-day",
    ),
    pytest.param(
        line("CONNECT_NUM_TASKS", "3.0000", "lcc-1"),
        [lived(ident("sa-late"), created=AFTER_THE_DAY)],
        connector("SERVICE_ACCOUNT", kafka_service_account_id="sa-late"),
        None,
        "sa-late",
        id="connector-service-account-created-after-the-day",
    ),
    pytest.param(
        line("KSQL_NUM_CSU", "10.0000", "lksqlc-1"),
        [lived(ident("sa-late"), created=AFTER_THE_DAY)],
        [res("lksqlc-1", "ksqldb_cluster", owner_id="sa-late")],
        None,
        "sa-late",
        id="ksqldb-owner-created-after-the-day",
    ),
    pytest.param(
        line("KSQL_NUM_CSU", "10.0000", "lksqlc-1"),
        [lived(ident("u-gone", "user"), deleted=BEFORE_THE_DAY)],
        [res("lksqlc-1", "ksqldb_cluster", owner_id="u-gone")],
        None,
        "u-gone",
        id="ksqldb-owner-deleted-before-the-day",
    ),
    pytest.param(
        line("FLINK_NUM_CFU", "7.0000", POOL),
        [lived(ident("sa-late"), created=AFTER_THE_DAY)],
        [statement("stmt-alpha", "sa-late")],
        usage(flink_cfu_primary={"stmt-alpha": 4}),
        "sa-late",
        id="flink-statement-principal-created-after-the-day",
    ),
    pytest.param(
        line("KAFKA_NETWORK_READ", "5.0000"),
        [*sas("sa-1"), lived(api_key("key-late", "sa-1"), created=AFTER_THE_DAY)],
        [],
        usage(bytes_out={"key-late": 900}),
        "sa-1",
        id="metrics-api-key-created-after-the-day",
    ),
    pytest.param(
        line("KAFKA_NETWORK_WRITE", "5.0000"),
        [*sas("sa-1"), lived(api_key("key-old", "sa-1"), deleted=BEFORE_THE_DAY)],
        [],
        usage(bytes_in={"key-old": 900}),
        "sa-1",
        id="metrics-api-key-deleted-before-the-day",
    ),
]


@pytest.mark.parametrize(("bill", "identities", "resources", "metrics", "payer"), ACROSS_TIME_CASES)
def test_credentials_and_owners_resolve_whatever_their_lifetime(
    bill, identities, resources, metrics, payer
) -> None:
    outcome = allocate(bill, identities, resources, metrics)
    assert [(r.identity_id, r.amount) for r in outcome.rows] == [(payer, bill.total_cost)]
    charged = outcome.resolution.merged_active[payer]
    assert charged == next(i for i in identities if i.identity_id == payer), "the gathered identity"


def test_a_key_made_after_the_day_does_not_make_its_owner_active_on_the_cluster_that_day() -> None:
    """Membership stays temporal: without usage the line goes to the tenant, not to a key's future owner."""
    people = [*sas("sa-tenant"), lived(ident("sa-late"), created=AFTER_THE_DAY)]
    people.append(lived(api_key("key-late", "sa-late"), created=AFTER_THE_DAY))
    outcome = allocate(line("KAFKA_BASE", "6.0000"), people)
    assert outcome.resolution.resource_active.ids() == []
    assert table(outcome.rows) == even_rows(
        ("sa-tenant", "6.0000"), detail="no_metrics_no_active_identities_located", tier=1
    )


# --- org-wide and default -----------------------------------------------------------------------------------

ORG_CASES = [
    pytest.param(
        line("AUDIT_LOG_READ", "100", "unresolved_billing_1"),
        sas("sa-1", "sa-2", "sa-3", "sa-4"),
        even_rows(*((f"sa-{n}", "25.0000") for n in range(1, 5))),
        id="s33-audit-log",
    ),
    pytest.param(
        line("SUPPORT", "60", ""),
        [ident("u-bob", "user"), ident("u-alice", "user")],
        even_rows(("u-alice", "30"), ("u-bob", "30")),
        id="s33-support-sorted",
    ),
    pytest.param(
        line("SUPPORT", "50", ""),
        [UNALLOCATED_IDENTITY],
        [terminal_row("UNALLOCATED", "50", 1)],
        id="s33-nobody",
    ),
    pytest.param(
        line("AUDIT_LOG_READ", "130", ""),
        [
            *sas(*(f"sa-{n:02}" for n in range(10))),
            *(api_key(f"key-{n}", "sa-00") for n in range(50)),
            *(ident(f"pool-{n}", "identity_pool") for n in range(3)),
        ],
        even_rows(*((f"pool-{n}", "10") for n in range(3)), *((f"sa-{n:02}", "10") for n in range(10))),
        id="s34-types-filtered",
    ),
    pytest.param(
        line("AUDIT_LOG_READ", "300", ""),
        [
            *sas("sa-1"),
            ident("u-1", "user"),
            ident("pool-1", "identity_pool"),
            api_key("key-1", "sa-1"),
            ident("sys-1", "system"),
        ],
        even_rows(("pool-1", "100"), ("sa-1", "100"), ("u-1", "100")),
        id="s34-mixed",
    ),
    pytest.param(
        line("AUDIT_LOG_READ", "30", ""),
        [ident("p-1", "principal")],
        [terminal_row("UNALLOCATED", "30", 1)],
        id="s34-principal-only",
    ),
    pytest.param(
        line("AUDIT_LOG_READ", "30", ""),
        sas("sa-c", "sa-a", "sa-b"),
        even_rows(("sa-a", "10"), ("sa-b", "10"), ("sa-c", "10")),
        id="s34-sorted",
    ),
]


@pytest.mark.parametrize(("bill", "identities", "expected"), ORG_CASES)
def test_s33_s34_org_wide(bill, identities, expected) -> None:
    assert table(allocate(bill, identities).rows) == expected


@pytest.mark.parametrize(
    ("bill", "expected"),
    [
        pytest.param(
            line("TABLEFLOW_DATA_PROCESSED", "75", "tableflow-res-abc"),
            [("tableflow-res-abc", Decimal(75), "shared", "default", "using_default_allocator", None)],
            id="s35-tableflow-default",
        ),
        pytest.param(
            line("CLUSTER_LINKING_READ", "40", "lkc-link-1"),
            [("lkc-link-1", Decimal(40), "usage", "cluster_linking", "cluster_linking_cost", None)],
            id="s35-cluster-linking",
        ),
        pytest.param(
            line("MYSTERY_PRODUCT_XYZ", "12", "r-1"),
            [("r-1", Decimal(12), "shared", "unknown", "using_unknown_allocator", None)],
            id="s35-unknown-to-resource",
        ),
        pytest.param(
            line("MYSTERY_PRODUCT_XYZ", "12", ""),
            [("UNALLOCATED", Decimal(12), "shared", "unknown", "using_unknown_allocator", None)],
            id="s35-unknown-without-resource",
        ),
    ],
)
def test_s35_default_and_unknown(bill, expected) -> None:
    assert table(allocate(bill, sas("sa-1"), [], None).rows) == expected


# --- sentinels and the handler set --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "identity_type"),
    [
        ("sa-ghost", "service_account"),
        ("u-ghost", "user"),
        ("pool-ghost", "identity_pool"),
        ("x-1", "unknown"),
    ],
)
def test_unknown_metrics_principal_becomes_a_sentinel_typed_by_prefix(principal, identity_type) -> None:
    outcome = allocate(line("KAFKA_NETWORK_READ", "10"), [], [], usage(bytes_out={principal: 5}))
    sentinel = outcome.resolution.metrics_derived[principal]
    assert (sentinel.identity_type, sentinel.display_name, sentinel.metadata) == (
        identity_type,
        f"Unknown {identity_type}",
        {"sentinel": True},
    )
    assert table(outcome.rows) == usage_rows((principal, "10"))
    assert type_from_prefix(principal) == identity_type


def test_usage_of_an_ownerless_api_key_stays_on_the_key() -> None:
    """A key with no owner cannot be made active, but its bytes still count (under the key's own id)."""
    outcome = allocate(
        line("KAFKA_NETWORK_WRITE", "100"),
        [*sas("sa-1"), api_key("key-orphan", None)],
        [],
        usage(bytes_in={"sa-1": 100, "key-orphan": 300}),
    )
    assert outcome.resolution.metrics_derived.ids() == ["sa-1"]
    assert table(outcome.rows) == usage_rows(("key-orphan", "75"), ("sa-1", "25"))


def test_api_key_owner_missing_from_inventory_is_a_sentinel() -> None:
    _, resolution = resolve(line("KAFKA_BASE", "1"), [api_key("key-1", "sa-deleted")])
    owner = resolution.resource_active["sa-deleted"]
    assert (owner.identity_type, owner.metadata) == ("service_account", {"sentinel": True})


def test_handlers_never_fill_the_tenant_period() -> None:
    identities = [*keys_on("lkc-abc", "sa-1"), *keys_on("lsrc-1", "sa-2"), ident("u-1", "user")]
    resources = [res("lksqlc-1", "ksqldb_cluster", owner_id="sa-1"), statement("s", "sa-1")]
    for product_type in chains.PRODUCTS:
        _, resolution = resolve(line(product_type, "1"), identities, resources)
        assert len(resolution.tenant_period) == 0, product_type


def test_handler_set_claims_every_table_entry_exactly_once() -> None:
    handlers = confluent_cloud_handlers()
    assert [h.service_type for h in handlers] == [
        "kafka",
        "schema_registry",
        "connector",
        "ksqldb",
        "flink",
        "org_wide",
        "default",
    ]
    claims = claims_by_product_type(handlers)
    assert {pt: h.service_type for pt, h in claims.items()} == {
        pt: service for pt, (service, _) in chains.PRODUCTS.items()
    }


def test_a_product_type_claimed_twice_is_an_error() -> None:
    with pytest.raises(
        ValueError, match="KAFKA_BASE is claimed by both the 'kafka' and the 'kafka' handlers"
    ):
        claims_by_product_type([KafkaHandler(), KafkaHandler()])


def test_a_handler_refuses_product_types_it_does_not_claim() -> None:
    with pytest.raises(ValueError, match="the kafka handler does not handle product type 'SUPPORT'"):
        KafkaHandler().allocator("SUPPORT")
