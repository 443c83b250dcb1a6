"""The inventory and the cost source against the sandbox organization, faults included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from chargeback_assets.ecosystems.confluent_cloud.billing import CCloudCostSource
from chargeback_assets.ecosystems.confluent_cloud.client import CCloudApiError, CCloudClient
from chargeback_assets.ecosystems.confluent_cloud.inventory import IDENTITIES, RESOURCE_TYPES, CCloudInventory
from chargeback_assets.ecosystems.confluent_cloud.settings import FlinkRegion, HttpSettings
from chargeback_assets.sandbox import Organization, SandboxServer, generate_org
from chargeback_assets.validation import Secret
from chargeback_assets_tests.ecosystems.http_fake import FakeTime

KEY, SECRET = "integration-key", "integration-secret"
END = date(2026, 1, 31)
START = date(2026, 1, 21)


@pytest.fixture(scope="module")
def org() -> Organization:
    return generate_org("small", seed=7, end_date=END, days=10)


@pytest.fixture
def sandbox(org: Organization) -> Iterator[SandboxServer]:
    with SandboxServer(org, api_key=KEY, api_secret=SECRET) as running:
        yield running


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[CCloudClient]:
    settings = HttpSettings(base_url=sandbox.url, min_interval_seconds=0.0, timeout_seconds=5.0)
    connection = CCloudClient(settings, KEY, Secret(SECRET), "sandbox", budget=FakeTime().budget())
    yield connection
    connection.close()


def _inventory(client: CCloudClient, org: Organization, sandbox: SandboxServer) -> CCloudInventory:
    regions = sorted({pool["spec"]["region"] for pool in org.objects["compute_pools"]})
    flink = [FlinkRegion(region, KEY, Secret(SECRET), base_url=sandbox.url) for region in regions]
    return CCloudInventory(client, "sandbox-tenant", flink, client.settings)


def _ids(items) -> set[str]:
    return {item["id"] for item in items}


def test_inventory_matches_the_organization(client, org, sandbox):
    gathered = _inventory(client, org, sandbox).gather()
    assert gathered.errors == []
    assert gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES}

    by_type: dict[str, set[str]] = {}
    for resource in gathered.resources:
        by_type.setdefault(resource.resource_type, set()).add(resource.resource_id)
    assert by_type["environment"] == _ids(org.objects["environments"])
    assert by_type["kafka_cluster"] == _ids(org.objects["kafka_clusters"])
    assert by_type["schema_registry"] == _ids(org.objects["schema_registries"])
    assert by_type["ksqldb_cluster"] == _ids(org.objects["ksqldb_clusters"])
    assert by_type["flink_compute_pool"] == _ids(org.objects["compute_pools"])
    assert by_type["flink_statement"] == {s["metadata"]["uid"] for s in org.objects["flink_statements"]}
    connectors = {
        entry["id"]["id"]
        for clusters in org.connectors.values()
        for by_name in clusters.values()
        for entry in by_name.values()
    }
    assert by_type["connector"] == connectors

    identity_ids = {i.identity_id for i in gathered.identities}
    expected = set()
    for kind in ("service_accounts", "users", "api_keys", "identity_providers"):
        expected |= _ids(org.objects[kind])
    for pools in org.identity_pools.values():
        expected |= _ids(pools)
    assert identity_ids == expected


def test_inventory_survives_rate_limits_server_errors_and_truncation(client, org, sandbox):
    sandbox.faults.set("rate_limit", times=2, path_prefix="/org/v2/environments", seconds=0.01)
    sandbox.faults.set("server_error", times=1, path_prefix="/cmk/v2/clusters", status=503)
    sandbox.faults.set("truncated", times=1, path_prefix="/iam/v2/users")
    gathered = _inventory(client, org, sandbox).gather()
    assert gathered.errors == [] and gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES}
    statuses = [r.status for r in sandbox.requests if r.path == "/org/v2/environments"]
    assert statuses[:3] == [429, 429, 200]


def test_a_persistent_outage_is_recorded_and_limits_deletion_authority(client, org, sandbox):
    sandbox.faults.set("server_error", times=None, path_prefix="/ksqldbcm/")
    gathered = _inventory(client, org, sandbox).gather()
    assert not gathered.complete
    assert all("/ksqldbcm/v2/clusters" in error and "503" in error for error in gathered.errors)
    assert gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES} - {"ksqldb_cluster"}


def test_a_display_name_that_is_not_unicode_makes_the_inventory_incomplete_naming_it(client):
    org = generate_org("small", seed=7, end_date=END, days=10)
    account = org.objects["service_accounts"][0]["id"]
    org.rename(account, "billing\ud800")
    with SandboxServer(org, api_key=KEY, api_secret=SECRET) as sandbox:
        settings = HttpSettings(base_url=sandbox.url, min_interval_seconds=0.0, timeout_seconds=5.0)
        connection = CCloudClient(settings, KEY, Secret(SECRET), "sandbox", budget=FakeTime().budget())
        gathered = _inventory(connection, org, sandbox).gather()
        connection.close()
    assert not gathered.complete
    [error] = [e for e in gathered.errors if "/iam/v2/service-accounts" in e]
    assert "display_name holds an unpaired UTF-16 surrogate" in error
    assert IDENTITIES not in gathered.observed_types


def test_cost_source_reads_the_whole_bill(client, org):
    lines = CCloudCostSource(client, "sandbox-tenant", days_per_query=4).gather(START, END)
    raw_total = sum(Decimal(str(row["amount"])) for row in org.costs)
    assert sum(Decimal(line.metadata.get("raw_amount", line.total_cost)) for line in lines) == raw_total
    assert {line.timestamp.date() for line in lines} == {
        date.fromisoformat(r["start_date"]) for r in org.costs
    }
    assert not any(line.metadata.get("malformed") for line in lines)
    assert lines == CCloudCostSource(client, "sandbox-tenant", days_per_query=15).gather(START, END)


SERVICE_ACCOUNTS = "/iam/v2/service-accounts"


def _quick_client(
    sandbox: SandboxServer, max_retries: int = 3, timeout: float = 5.0, time: FakeTime | None = None
) -> CCloudClient:
    settings = HttpSettings(
        base_url=sandbox.url, min_interval_seconds=0.0, timeout_seconds=timeout, max_retries=max_retries
    )
    return CCloudClient(settings, KEY, Secret(SECRET), "sandbox", budget=(time or FakeTime()).budget())


def test_pagination_over_the_sandbox_returns_every_item_once_and_keeps_filters(org, sandbox) -> None:
    client = _quick_client(sandbox)
    expected = [sa["id"] for sa in org.objects["service_accounts"]]
    assert [sa["id"] for sa in client.list(SERVICE_ACCOUNTS, page_size=3)] == expected
    pages = [r for r in sandbox.requests if r.path == SERVICE_ACCOUNTS]
    assert len(pages) == -(-len(expected) // 3)
    env = org.environment_ids()[0]
    clusters = list(client.list("/cmk/v2/clusters", {"environment": env}, page_size=1))
    assert {c["spec"]["environment"]["id"] for c in clusters} == {env}
    later_pages = [r for r in sandbox.requests if r.path == "/cmk/v2/clusters" and "page_token" in r.query]
    assert all(r.query["environment"] == [env] for r in later_pages)


@pytest.mark.parametrize(
    ("fault", "retries"),
    [
        ({"kind": "rate_limit", "times": 2, "seconds": 0.05}, 2),
        ({"kind": "server_error", "times": 2, "status": 503}, 2),
        ({"kind": "truncated", "times": 1}, 1),
        ({"kind": "delay", "times": 1, "seconds": 1.5}, 1),
    ],
    ids=["429", "503", "truncated", "timeout"],
)
def test_each_transient_fault_is_retried_to_the_full_list(org, sandbox, fault, retries) -> None:
    kind = fault.pop("kind")
    sandbox.faults.set(kind, path_prefix=SERVICE_ACCOUNTS, **fault)
    time = FakeTime()
    client = _quick_client(sandbox, timeout=0.5, time=time)
    expected = [sa["id"] for sa in org.objects["service_accounts"]]
    assert [sa["id"] for sa in client.list(SERVICE_ACCOUNTS, page_size=5)] == expected
    assert len(time.waits) == retries, "one backoff wait per retried request"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "repeat_page_token", "times": None}, "repeated a page token"),
        ({"kind": "server_error", "times": None, "status": 503}, "status 503"),
        ({"kind": "rate_limit", "times": None, "seconds": 0.05}, "status 429"),
    ],
    ids=["repeating-token", "persistent-503", "persistent-429"],
)
def test_persistent_faults_are_typed_errors_naming_endpoint_and_never_the_secret(
    sandbox, fault, message
) -> None:
    kind = fault.pop("kind")
    sandbox.faults.set(kind, path_prefix=SERVICE_ACCOUNTS, **fault)
    with pytest.raises(CCloudApiError) as raised:
        list(_quick_client(sandbox, max_retries=2).list(SERVICE_ACCOUNTS, page_size=3))
    error = raised.value
    text = f"{error} {error!r}"
    assert SERVICE_ACCOUNTS in text and message in text and "sandbox" in text
    assert KEY not in text and SECRET not in text
