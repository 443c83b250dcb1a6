"""Self-managed Kafka inventory from a real Prometheus: cluster, brokers, topics, principals (scenario 31)."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets.ecosystems.self_managed_kafka.inventory import KafkaInventory
from chargeback_assets.engine.models import Identity
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import PrometheusProxy

from .settings_builders import CLUSTER_ID, kafka_settings

GATHERED_AT = datetime(2026, 2, 3, 12, 0, tzinfo=UTC)
TEAMS = {
    "source": "both",
    "principal_to_team": {"User:alice": "team-data"},
    "static_identities": [{"identity_id": "team-no-name", "identity_type": "team"}],
}


def inventory(proxy: PrometheusProxy, **overrides) -> KafkaInventory:
    settings = kafka_settings(proxy.url, region="eu-west-1", **overrides)
    metrics = PrometheusMetricsSource(settings.metrics, "onprem")
    return KafkaInventory(settings, metrics, "tenant-1", clock=lambda: GATHERED_AT)


def described(identity: Identity) -> tuple:
    return (identity.identity_id, identity.identity_type, identity.display_name, dict(identity.metadata))


def test_discovers_brokers_topics_and_principals_of_the_last_hour(prometheus: PrometheusProxy) -> None:
    gathered = inventory(prometheus, identity_source=TEAMS).gather()
    assert gathered.complete
    assert gathered.observed_types == {"cluster", "broker", "topic"}
    assert [(r.resource_id, r.resource_type, r.display_name, r.parent_id) for r in gathered.resources] == [
        (CLUSTER_ID, "cluster", CLUSTER_ID, None),
        (f"{CLUSTER_ID}:broker:1", "broker", "1", CLUSTER_ID),
        (f"{CLUSTER_ID}:broker:2", "broker", "2", CLUSTER_ID),
        (f"{CLUSTER_ID}:broker:3", "broker", "3", CLUSTER_ID),
        (f"{CLUSTER_ID}:topic:orders", "topic", "orders", CLUSTER_ID),
        (f"{CLUSTER_ID}:topic:payments", "topic", "payments", CLUSTER_ID),
    ]
    assert gathered.resources[0].metadata == {"broker_count": 3, "region": "eu-west-1"}
    assert gathered.resources[1].metadata == {"cluster_id": CLUSTER_ID}
    assert [described(i) for i in gathered.identities] == [
        ("User:alice", "principal", "team-data", {"raw_principal": "User:alice", "team": "team-data"}),
        ("User:carol", "principal", "User:carol", {"raw_principal": "User:carol", "team": "UNASSIGNED"}),
        ("team-no-name", "team", "team-no-name", {}),
    ]
    (request,) = prometheus.server.hits("/api/v1/query_range")
    assert request.query["end"] == f"{GATHERED_AT.timestamp() - 0.001:.3f}"


def test_failed_discovery_yields_only_the_cluster_and_is_incomplete(prometheus: PrometheusProxy) -> None:
    prometheus.fault = lambda request: True
    gathered = inventory(prometheus, identity_source=TEAMS).gather()
    assert not gathered.complete
    assert "discovery failed" in gathered.errors[0] and "onprem" in gathered.errors[0]
    assert [r.resource_id for r in gathered.resources] == [CLUSTER_ID]
    assert gathered.observed_types == {"cluster"}
    assert [i.identity_id for i in gathered.identities] == ["team-no-name"]


def test_principals_are_not_identities_when_the_source_is_static(prometheus: PrometheusProxy) -> None:
    static = {"source": "static", "static_identities": [{"identity_id": "u-1", "identity_type": "user"}]}
    gathered = inventory(prometheus, identity_source=static).gather()
    assert [i.identity_id for i in gathered.identities] == ["u-1"]
    assert len(gathered.resources) == 6


def test_static_identities_stand_in_when_prometheus_finds_no_principal(prometheus: PrometheusProxy) -> None:
    prometheus.fault = lambda request: True
    fallback = {"static_identities": [{"identity_id": "u-1", "identity_type": "user", "team": "ops"}]}
    gathered = inventory(prometheus, identity_source=fallback).gather()
    assert [described(i) for i in gathered.identities] == [("u-1", "user", "u-1", {"team": "ops"})]
