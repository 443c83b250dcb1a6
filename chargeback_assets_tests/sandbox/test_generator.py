from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from chargeback_assets.sandbox import generate_org
from chargeback_assets.sandbox.generator import (
    FLINK_CFU,
    INTERNAL_TOPICS,
    REQUEST_BYTES,
    RESPONSE_BYTES,
    TOPIC_RECEIVED_BYTES,
    TOPIC_RETAINED_BYTES,
    TOPIC_SENT_BYTES,
)

from .conftest import END

LINE_TYPES = {
    "KAFKA_NUM_CKUS", "KAFKA_NETWORK_READ", "KAFKA_NETWORK_WRITE", "KAFKA_STORAGE", "KAFKA_BASE",
    "KAFKA_PARTITION", "CONNECT_CAPACITY", "CONNECT_NUM_TASKS", "CONNECT_THROUGHPUT", "KSQL_NUM_CSUS",
    "FLINK_NUM_CFUS", "GOVERNANCE_BASE", "SCHEMA_REGISTRY", "NUM_RULES", "AUDIT_LOG_READ", "SUPPORT",
    "CLUSTER_LINKING_PER_LINK", "CLUSTER_LINKING_READ", "CLUSTER_LINKING_WRITE", "TABLEFLOW_DATA_PROCESSED",
    "TABLEFLOW_NUM_TOPICS", "TABLEFLOW_STORAGE", "PROMO_CREDIT",
}  # fmt: skip


def _fingerprint(org, days: list[date]) -> str:
    """Objects, costs and every sample of the given days, as one JSON string."""
    samples = {}
    for series in org.usage.all_series():
        for day in days:
            start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
            ts, vs = org.usage.samples(series, start, start + 86_399_999)
            samples[f"{series.key}@{day}"] = [ts.tolist(), vs.tolist()]
    return json.dumps([org.objects, org.identity_pools, org.connectors, org.costs, samples], sort_keys=True)


def test_same_seed_gives_identical_objects_costs_and_metrics():
    days = [date(2026, 6, 2), date(2026, 6, 30)]
    first = _fingerprint(generate_org("small", seed=11, end_date=END), days)
    again = _fingerprint(generate_org("small", seed=11, end_date=END), days)
    other = _fingerprint(generate_org("small", seed=12, end_date=END), days)
    assert first == again
    assert first != other


def test_metric_samples_do_not_depend_on_what_was_asked_before(small_org):
    """Lazy generation: a (series, day) is the same whether drawn first, last or from a cold cache."""
    fresh = generate_org("small", seed=7, end_date=END)
    series = fresh.usage.series(REQUEST_BYTES)[3]
    start = int(datetime(2026, 6, 10, tzinfo=UTC).timestamp() * 1000)
    late = fresh.usage.samples(series, start, start + 3 * 86_400_000)
    early = small_org.usage.samples(series, start + 86_400_000, start + 2 * 86_400_000)
    mask = (late[0] >= start + 86_400_000) & (late[0] <= start + 2 * 86_400_000)
    assert late[0][mask].tolist() == early[0].tolist()
    assert late[1][mask].tolist() == early[1].tolist()


@pytest.mark.parametrize(
    ("size", "envs", "clusters", "service_accounts", "api_keys"),
    [("small", 2, 2, 12, 22), ("medium", 3, 10, 200, 500), ("large", 10, 50, 2000, 4000)],
)
def test_sizes_have_the_stated_counts(size, envs, clusters, service_accounts, api_keys):
    org = generate_org(size, end_date=END)
    counts = {key: len(items) for key, items in org.objects.items()}
    assert counts["environments"] == envs
    assert counts["kafka_clusters"] == clusters
    assert counts["service_accounts"] == service_accounts
    assert counts["api_keys"] == api_keys
    assert counts["schema_registries"] == envs  # one per environment
    assert counts["organizations"] == 1
    for lkc in org.cluster_ids():
        principals = {
            s.label_dict()["principal_id"] for s in org.usage.matching(REQUEST_BYTES, [("kafka_id", lkc)])
        }
        owners = {
            k["spec"]["owner"]["id"] for k in org.objects["api_keys"] if k["spec"]["resource"]["id"] == lkc
        }
        assert principals == owners
        assert 10 <= len(principals) <= 60


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="'huge'"):
        generate_org("huge")


def test_the_service_account_count_can_be_scaled_alone():
    """The scale benchmark grows one dimension of the work: the other counts of the size stay."""
    base = generate_org("small", seed=7, end_date=END, days=2)
    doubled = generate_org("small", seed=7, end_date=END, days=2, service_accounts=24)
    assert len(base.objects["service_accounts"]) == 12
    assert len(doubled.objects["service_accounts"]) == 24
    assert len(doubled.objects["kafka_clusters"]) == len(base.objects["kafka_clusters"])
    with pytest.raises(ValueError, match="service_accounts must be at least 1"):
        generate_org("small", service_accounts=0)


def test_costs_cover_every_product_line_with_exact_amounts(small_org):
    by_type = Counter(row["line_type"] for row in small_org.costs)
    assert set(by_type) == LINE_TYPES
    for row in small_org.costs:
        amount, original, discount = (
            Decimal(str(row[k])) for k in ("amount", "original_amount", "discount_amount")
        )
        assert amount == amount.quantize(Decimal("0.0001"))
        assert amount == original - discount
        org_level = row["line_type"] in ("AUDIT_LOG_READ", "SUPPORT", "PROMO_CREDIT")
        assert ("resource" not in row) == org_level
    promos = [row for row in small_org.costs if row["line_type"] == "PROMO_CREDIT"]
    assert promos and all(Decimal(str(r["amount"])) < 0 for r in promos)
    assert len(promos) < 35  # some days only
    day_rules = [
        r for r in small_org.costs if r["line_type"] == "NUM_RULES" and r["start_date"] == "2026-06-15"
    ]
    assert len(day_rules) == 2
    assert {r["tier_dimensions"]["tier"] for r in day_rules} == {"1-10", "11+"}
    assert len({(r["start_date"], r["id"]) for r in small_org.costs}) == len(small_org.costs)


def test_connectors_cover_every_auth_case(small_org):
    key_ids = {k["id"] for k in small_org.objects["api_keys"]}
    sa_ids = {s["id"] for s in small_org.objects["service_accounts"]}
    configs = [
        e["info"]["config"]
        for by_lkc in small_org.connectors.values()
        for c in by_lkc.values()
        for e in c.values()
    ]
    modes = Counter(c.get("kafka.auth.mode", "NONE") for c in configs)
    assert modes.keys() == {"SERVICE_ACCOUNT", "KAFKA_API_KEY", "NONE"}
    assert all(
        c["kafka.service.account.id"] in sa_ids
        for c in configs
        if c.get("kafka.auth.mode") == "SERVICE_ACCOUNT"
    )
    keyed = [c["kafka.api.key"] for c in configs if c.get("kafka.auth.mode") == "KAFKA_API_KEY"]
    assert "****************" in keyed
    assert any(k in key_ids for k in keyed)
    assert all(isinstance(v, str) for c in configs for v in c.values())


def test_identities_and_flink_fields_the_client_reads(small_org):
    start = datetime(2026, 5, 27, tzinfo=UTC)
    created = [
        datetime.fromisoformat(i["metadata"]["created_at"]) for i in small_org.objects["service_accounts"]
    ]
    assert any(start <= c < datetime(2026, 7, 1, tzinfo=UTC) for c in created)
    assert any(c < start for c in created)
    for pool in small_org.objects["compute_pools"]:
        assert (
            f"crn://confluent.cloud/organization={small_org.organization_id}/"
            in pool["metadata"]["resource_name"]
        )
    statements = small_org.objects["flink_statements"]
    assert {s["status"]["phase"] for s in statements} == {"RUNNING", "COMPLETED", "STOPPED"}
    identity_ids = {i["id"] for i in small_org.objects["service_accounts"] + small_org.objects["users"]}
    assert all(s["spec"]["principal"] in identity_ids for s in statements)
    cfu_names = {s.label_dict()["flink_statement_name"] for s in small_org.usage.series(FLINK_CFU)}
    assert cfu_names == {s["name"] for s in statements}
    assert all(
        k["spec"]["credential_identity"]["id"] in identity_ids for k in small_org.objects["ksqldb_clusters"]
    )
    assert len(small_org.usage.series(RESPONSE_BYTES)) == len(small_org.usage.series(REQUEST_BYTES))


def test_some_principals_are_bursty(small_org):
    """A bursty principal moves over 90% of its day's bytes within one hour."""
    start = int(datetime(2026, 6, 15, tzinfo=UTC).timestamp() * 1000)
    bursty = 0
    for series in small_org.usage.series(REQUEST_BYTES):
        ts, vs = small_org.usage.samples(series, start, start + 86_399_999)
        if vs.sum() == 0:
            continue
        hourly = [vs[(ts - start) // 3_600_000 == h].sum() for h in range(24)]
        bursty += max(hourly) > 0.9 * vs.sum()
    assert bursty >= 1


def test_topic_bytes_add_up_to_the_principals_traffic_and_include_what_the_overlay_must_handle():
    org = generate_org("small", seed=7, end_date=END, days=10)
    usage = org.usage
    clusters = [c["id"] for c in org.objects["kafka_clusters"]]
    topics_of = {
        cluster: {
            s.label_dict()["topic"]
            for s in usage.series(TOPIC_RETAINED_BYTES)
            if s.label_dict()["kafka_id"] == cluster
        }
        for cluster in clusters
    }
    assert topics_of[clusters[-1]] == set(), "the last cluster exports no topic metrics"
    assert {"archive-idle", "events-late", *INTERNAL_TOPICS} <= topics_of[clusters[0]]
    received = {s.label_dict()["topic"] for s in usage.series(TOPIC_RECEIVED_BYTES)}
    assert "archive-idle" not in received and set(INTERNAL_TOPICS) <= received

    day_ms = int(datetime(END.year, END.month, END.day, tzinfo=UTC).timestamp() * 1000) - 86_400_000
    window = (day_ms, day_ms + 86_400_000 - 1)  # the last day: every topic exists all day
    for topic_metric, principal_metric in (
        (TOPIC_RECEIVED_BYTES, REQUEST_BYTES),
        (TOPIC_SENT_BYTES, RESPONSE_BYTES),
    ):

        def day_total(metric: str, cluster: str = clusters[0]) -> tuple[float, int]:
            series = [s for s in usage.series(metric) if s.label_dict()["kafka_id"] == cluster]
            samples = [usage.samples(s, *window) for s in series]
            return sum(float(v.sum()) for _, v in samples), max(len(t) for t, _ in samples)

        topics, steps = day_total(topic_metric)
        principals, _ = day_total(principal_metric)
        # Each topic's step is its share of the principals' step, rounded down: at most 1 byte lost per topic.
        assert principals - steps * len(topics_of[clusters[0]]) <= topics <= principals
