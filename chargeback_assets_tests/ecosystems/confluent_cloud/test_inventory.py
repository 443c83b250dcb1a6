from __future__ import annotations

import base64
import copy
from datetime import datetime, timedelta

import pytest

from chargeback_assets.ecosystems.confluent_cloud.inventory import (
    IDENTITIES,
    RESOURCE_TYPES,
    CCloudInventory,
    connector_auth,
    parse_timestamp,
)
from chargeback_assets.ecosystems.confluent_cloud.settings import FlinkRegion
from chargeback_assets.engine.models import UTC
from chargeback_assets.validation import Secret
from chargeback_assets_tests.ecosystems.confluent_cloud.conftest import Reply, listing, tf

NOW = datetime(2026, 2, 1, 6, 0, tzinfo=UTC)
ORG = "1111aaaa-11aa-11aa-11aa-111111aaaaaa"
STATEMENTS = f"/sql/v1/organizations/{ORG}/environments/env-1/statements"
CONNECTORS = "/connect/v1/environments/env-1/clusters/lkc-1/connectors"
FLINK_KEY, FLINK_SECRET = "FLINKKEYUSEAST2X", "flink-secret-value"


def _with(item, **changes):
    """A recorded item with some fields replaced (`spec__region` sets item["spec"]["region"])."""
    item = copy.deepcopy(item)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = item
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return item


def _connector(name, connector_id, **config):
    entry = copy.deepcopy(tf("connector/managed/read_created_connectors.json")["test_connector"])
    entry["info"]["config"] = {"name": name, "connector.class": "DatagenSourceInternal", **config}
    entry["id"] = {"id": connector_id, "id_type": "ID"} if connector_id else {}
    return entry


def _statement(recorded, **changes):
    return _with(tf(f"flink_statement/{recorded}"), **changes)


@pytest.fixture
def org(fake):
    env = _with(tf("environment/read_envs_page_1.json")["data"][0], id="env-1")
    cluster = _with(tf("kafka/read_kafkas_page_1.json")["data"][0], id="lkc-1", spec__environment__id="env-1")
    schema_registry = _with(
        tf("schema_registry_cluster/read_clusters.json")["data"][0], spec__environment__id="env-1"
    )
    ksql_owned, ksql_orphan = tf("ksql/ksql_clusters.json")["data"]
    ksql_owned = _with(ksql_owned, id="lksqlc-1")
    ksql_orphan = _with(ksql_orphan, id="lksqlc-2")
    del ksql_orphan["spec"]["credential_identity"]
    pool_east, pool_other = tf("compute_pool/read_compute_pools.json")["data"]
    pool_east = _with(
        pool_east,
        id="lfcp-1",
        spec__environment__id="env-1",
        metadata__resource_name=f"crn://confluent.cloud/organization={ORG}/environment=env-1/compute-pool=lfcp-1",
    )
    pool_other = _with(pool_other, id="lfcp-2", spec__region="eu-west-1", spec__environment__id="env-1")

    fake.route("/org/v2/environments", listing([env]))
    fake.route("/cmk/v2/clusters", listing([cluster]))
    fake.route(
        CONNECTORS,
        Reply(
            body={
                "by-sa": _connector(
                    "by-sa",
                    "lcc-sa",
                    **{"kafka.auth.mode": "SERVICE_ACCOUNT", "kafka.service.account.id": "sa-conn"},
                ),
                "by-key": _connector("by-key", "lcc-key", **{"kafka.api.key": "****************"}),
                "inferred-sa": _connector("inferred-sa", "lcc-isa", **{"kafka.service.account.id": "sa-2"}),
                "mystery": _connector("mystery", "lcc-unknown"),
                "no-id": _connector(
                    "no-id", None, **{"kafka.auth.mode": "kafka_api_key", "kafka.api.key": "K1"}
                ),
            }
        ),
    )
    fake.route("/srcm/v3/clusters", listing([schema_registry]))
    fake.route("/ksqldbcm/v2/clusters", listing([ksql_owned, ksql_orphan]))
    fake.route("/fcpm/v2/compute-pools", listing([pool_east, pool_other]))
    fake.route(
        STATEMENTS,
        listing(
            [
                _statement("read_running_flink_statement.json", spec__compute_pool_id="lfcp-1"),
                _statement(
                    "read_stopped_flink_statement.json",
                    metadata__uid="uid-stopped",
                    spec__compute_pool_id="lfcp-1",
                    spec__principal="sa-flink",
                ),
                _statement(
                    "read_running_flink_statement.json",
                    metadata__uid=None,
                    name="done",
                    status__phase="completed",
                    spec__compute_pool_id="lfcp-1",
                ),
            ]
        ),
    )
    fake.route("/iam/v2/service-accounts", Reply(body=tf("service_account/read_sas.json")))
    users_1, users_2 = tf("user/read_users_page_1.json"), tf("user/read_users_page_2.json")
    fake.route("/iam/v2/users", lambda r: Reply(body=users_2 if r.query.get("page_token") else users_1))
    fake.route("/iam/v2/api-keys", listing([tf("apikey/read_created_kafka_api_key.json")]))
    fake.route("/iam/v2/identity-providers", Reply(body=tf("identity_provider/read_identity_providers.json")))
    fake.route(
        "/iam/v2/identity-providers/op-4EY/identity-pools",
        Reply(body=tf("identity_pool/read_identity_pools.json")),
    )
    return fake


@pytest.fixture
def inventory(org, make_client):
    def build(**http):
        client = make_client(**http)
        region = FlinkRegion(" US-East-2 ", FLINK_KEY, Secret(FLINK_SECRET), base_url=org.url)
        return CCloudInventory(client, "org-123", [region], client.settings, now=NOW)

    return build


def test_complete_gather_maps_every_endpoint(inventory, org):
    gathered = inventory().gather()
    assert gathered.errors == [] and gathered.complete
    assert gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES}
    resources = {r.resource_id: r for r in gathered.resources}
    assert sorted(resources) == sorted(
        [
            "env-1",
            "lkc-1",
            "lcc-sa",
            "lcc-key",
            "lcc-isa",
            "lcc-unknown",
            "no-id",
            "lsrc-755ogo",
            "lksqlc-1",
            "lksqlc-2",
            "lfcp-1",
            "lfcp-2",
            "8b9c49bb-7351-416d-98d5-d5f29f6de980",
            "uid-stopped",
            "done",
        ]
    )
    assert all(
        r.status == "active" and r.last_seen_at == NOW and r.tenant_id == "org-123"
        for r in resources.values()
    )

    env = resources["env-1"]
    assert (env.resource_type, env.display_name) == ("environment", "nls")
    assert env.created_at == datetime(2023, 3, 17, 22, 10, 29, 616529, tzinfo=UTC)

    cluster = resources["lkc-1"]
    assert (cluster.resource_type, cluster.parent_id, cluster.cloud, cluster.region) == (
        "kafka_cluster",
        "env-1",
        "gcp",
        "us-central1",
    )
    assert cluster.display_name == "TestCluster" and cluster.metadata["env_id"] == "env-1"

    sr = resources["lsrc-755ogo"]
    assert (sr.resource_type, sr.parent_id, sr.cloud, sr.region) == (
        "schema_registry",
        "env-1",
        "aws",
        "us-east4",
    )

    owned, orphan = resources["lksqlc-1"], resources["lksqlc-2"]
    assert (owned.resource_type, owned.owner_id, owned.metadata["csu"]) == ("ksqldb_cluster", "u-a83k9b", 4)
    assert orphan.owner_id == "ksqldb_owner_unknown"
    assert owned.created_at == datetime(2006, 1, 2, 22, 4, 5, tzinfo=UTC)

    east, other = resources["lfcp-1"], resources["lfcp-2"]
    assert (east.resource_type, east.region, east.cloud, east.metadata["is_allocatable"]) == (
        "flink_compute_pool",
        "us-east-2",
        "aws",
        True,
    )
    assert other.metadata["is_allocatable"] is False


def test_connectors_and_their_auth_modes(inventory):
    resources = {r.resource_id: r for r in inventory().gather().resources if r.resource_type == "connector"}
    assert {rid: r.metadata["kafka_auth_mode"] for rid, r in resources.items()} == {
        "lcc-sa": "SERVICE_ACCOUNT",
        "lcc-key": "KAFKA_API_KEY",
        "lcc-isa": "SERVICE_ACCOUNT",
        "lcc-unknown": "UNKNOWN",
        "no-id": "KAFKA_API_KEY",
    }
    assert resources["lcc-sa"].metadata["kafka_service_account_id"] == "sa-conn"
    assert resources["lcc-key"].metadata["kafka_api_key"] == "****************"
    assert resources["lcc-isa"].metadata["kafka_service_account_id"] == "sa-2"
    assert "kafka_api_key" not in resources["lcc-unknown"].metadata
    assert resources["no-id"].metadata["kafka_api_key"] == "K1"
    assert all(r.parent_id == "lkc-1" and r.metadata["env_id"] == "env-1" for r in resources.values())
    assert resources["lcc-sa"].display_name == "by-sa" and resources["lcc-sa"].created_at is None


def test_connector_auth_table():
    assert connector_auth({}) == {"kafka_auth_mode": "UNKNOWN"}
    assert connector_auth({"kafka.auth.mode": "SERVICE_ACCOUNT"}) == {
        "kafka_auth_mode": "SERVICE_ACCOUNT",
        "kafka_service_account_id": None,
    }
    assert connector_auth({"kafka.api.key": "", "kafka.service.account.id": "sa-1"}) == {
        "kafka_auth_mode": "KAFKA_API_KEY",
        "kafka_api_key": "",
    }


def test_flink_statements_use_the_regional_key(inventory, org):
    statements = {
        r.resource_id: r for r in inventory().gather().resources if r.resource_type == "flink_statement"
    }
    running = statements["8b9c49bb-7351-416d-98d5-d5f29f6de980"]
    assert running.owner_id == "u-yo9j87" and running.parent_id == "lfcp-1"
    assert running.display_name == "workspace-2023-11-15-030109-0408d52d-eaff-4d50-a246-f822a29f2eb9"
    assert running.metadata["statement_name"] == running.display_name
    assert running.metadata["compute_pool_id"] == "lfcp-1" and running.metadata["is_stopped"] is False
    assert statements["uid-stopped"].metadata["is_stopped"] is True
    assert statements["uid-stopped"].owner_id == "sa-flink"
    assert statements["done"].metadata["is_stopped"] is True

    [hit] = org.hits(STATEMENTS)
    assert hit.query["page_size"] == "50"
    sent = base64.b64decode(hit.headers["Authorization"].removeprefix("Basic ")).decode()
    assert sent == f"{FLINK_KEY}:{FLINK_SECRET}"


def test_identities(inventory):
    identities = {i.identity_id: i for i in inventory().gather().identities}
    assert {i: x.identity_type for i, x in identities.items()} == {
        "sa-1jjv26": "service_account",
        "u-1jjv21": "user",
        "u-1jjv22": "user",
        "u-1jjv23": "user",
        "7FJIYKQ4SGQDQ72H": "api_key",
        "op-4EY": "identity_provider",
        "op-zmg": "identity_provider",
        "pool-AzXR": "identity_pool",
        "pool-Vk56": "identity_pool",
    }
    key = identities["7FJIYKQ4SGQDQ72H"]
    assert key.metadata["owner_id"] == "sa-12mgdv" and key.metadata["resource_id"] == "lkc-zmmq63"
    assert key.display_name == "CI Kafka API Key"
    assert identities["pool-AzXR"].metadata["provider_id"] == "op-4EY"
    assert identities["u-1jjv21"].display_name == "Alex #1"
    assert identities["sa-1jjv26"].created_at == datetime(2021, 8, 8, 18, 23, 41, 849685, tzinfo=UTC)
    assert all(i.last_seen_at == NOW for i in identities.values())


def test_a_failing_endpoint_keeps_the_rest_and_drops_its_type(inventory, org):
    org.route("/srcm/v3/clusters", Reply(500, {"errors": [{"detail": "down"}]}))
    gathered = inventory(max_retries=0).gather()
    assert not gathered.complete
    assert len(gathered.errors) == 1 and "/srcm/v3/clusters" in gathered.errors[0]
    assert "500" in gathered.errors[0]
    assert gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES} - {"schema_registry"}
    types = {r.resource_type for r in gathered.resources}
    assert "schema_registry" not in types and {"kafka_cluster", "connector", "flink_statement"} <= types


def test_failing_clusters_drop_connectors_too(inventory, org):
    org.route("/cmk/v2/clusters", Reply(403, {"errors": [{"code": "forbidden_access"}]}))
    gathered = inventory().gather()
    assert gathered.observed_types == {*RESOURCE_TYPES, IDENTITIES} - {"kafka_cluster", "connector"}
    assert org.hits(CONNECTORS) == []


def test_failing_environments_leave_only_identities(inventory, org):
    org.route("/org/v2/environments", Reply(401, {"errors": [{"code": "user_unauthenticated"}]}))
    gathered = inventory().gather()
    assert gathered.resources == [] and gathered.observed_types == {IDENTITIES}
    assert len(gathered.identities) == 9


def test_failing_identity_endpoint_removes_identity_authority(inventory, org):
    org.route(
        "/iam/v2/identity-providers/op-4EY/identity-pools", Reply(400, {"error_code": 400, "message": "x"})
    )
    gathered = inventory().gather()
    assert IDENTITIES not in gathered.observed_types
    assert set(RESOURCE_TYPES) <= gathered.observed_types
    assert "identity-pools" in gathered.errors[0]


def test_unreadable_items_count_as_a_failure(inventory, org):
    org.route("/ksqldbcm/v2/clusters", listing([{"spec": {"display_name": "no id"}}]))
    org.route(CONNECTORS, Reply(body=["a", "name", "array"]))
    gathered = inventory().gather()
    assert "ksqldb_cluster" not in gathered.observed_types and "connector" not in gathered.observed_types
    assert len(gathered.errors) == 2


def test_pool_without_organization_in_crn_skips_statements(inventory, org):
    pools = tf("compute_pool/read_compute_pools.json")["data"]
    org.route("/fcpm/v2/compute-pools", listing([_with(pools[0], metadata__resource_name="")]))
    gathered = inventory().gather()
    assert (
        "flink_statement" not in gathered.observed_types and "flink_compute_pool" in gathered.observed_types
    )
    assert "lfcp-abc123" in gathered.errors[0]
    assert org.hits(STATEMENTS) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-12-10T12:13:06.81192Z", datetime(2021, 12, 10, 12, 13, 6, 811920, tzinfo=UTC)),
        ("2006-01-02T15:04:05-07:00", datetime(2006, 1, 2, 22, 4, 5, tzinfo=UTC)),
        ("2023-11-15T08:34:12.123456789Z", datetime(2023, 11, 15, 8, 34, 12, 123456, tzinfo=UTC)),
        ("2023-11-15T08:34:12", datetime(2023, 11, 15, 8, 34, 12, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_timestamps(raw, expected):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0) and parsed.tzinfo is UTC
