"""Generic metrics inventory from a real Prometheus: one cluster, principals from the discovery query."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeback_assets.ecosystems.generic_metrics.inventory import GenericInventory
from chargeback_assets.ecosystems.prometheus import PrometheusMetricsSource
from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import PrometheusProxy

from .settings_builders import CLUSTER_ID, DISCOVERY, generic_settings

GATHERED_AT = datetime(2026, 2, 2, 6, 30, tzinfo=UTC)


def inventory(proxy: PrometheusProxy, **overrides) -> GenericInventory:
    settings = generic_settings(url=proxy.url, **overrides)
    return GenericInventory(
        settings, PrometheusMetricsSource(settings.metrics, "gm"), "t-1", clock=lambda: GATHERED_AT
    )


def test_cluster_and_principals_of_the_last_hour(prometheus: PrometheusProxy) -> None:
    identity_source = {
        "source": "both",
        "discovery_query": DISCOVERY,
        "principal_to_team": {"User:carol": "web"},
        "static_identities": [{"identity_id": "svc", "identity_type": "user", "display_name": "Svc"}],
    }
    gathered = inventory(prometheus, display_name="Search cluster", identity_source=identity_source).gather()
    assert gathered.complete
    assert [(r.resource_id, r.resource_type, r.display_name) for r in gathered.resources] == [
        (CLUSTER_ID, "cluster", "Search cluster")
    ]
    assert [(i.identity_id, i.display_name, i.metadata.get("team")) for i in gathered.identities] == [
        ("User:alice", "User:alice", "UNASSIGNED"),
        ("User:carol", "web", "web"),
        ("svc", "Svc", None),
    ]
    (request,) = prometheus.server.hits("/api/v1/query_range")
    assert (request.query["start"], request.query["end"]) == (
        f"{GATHERED_AT.timestamp() - 0.001:.3f}",
        f"{GATHERED_AT.timestamp() - 0.001:.3f}",
    )


def test_failed_discovery_keeps_the_cluster_and_is_incomplete(prometheus: PrometheusProxy) -> None:
    prometheus.fault = lambda request: True
    gathered = inventory(prometheus).gather()
    assert [r.resource_id for r in gathered.resources] == [CLUSTER_ID]
    assert gathered.identities == []
    assert not gathered.complete and "principal discovery failed" in gathered.errors[0]


def test_static_source_never_queries(prometheus: PrometheusProxy) -> None:
    static = {"source": "static", "static_identities": [{"identity_id": "u", "identity_type": "user"}]}
    gathered = inventory(prometheus, identity_source=static).gather()
    assert [i.identity_id for i in gathered.identities] == ["u"]
    assert prometheus.server.hits("/api/v1/query_range") == []
