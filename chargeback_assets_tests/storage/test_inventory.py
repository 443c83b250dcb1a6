from dataclasses import replace
from datetime import timedelta

import pytest

from chargeback_assets.engine.models import UNALLOCATED, Identity, Resource, Window
from chargeback_assets.storage.inventory import (
    MadeIdentities,
    active_ids,
    all_identities,
    all_resources,
    identities_overlapping,
    mark_deleted,
    resources_overlapping,
    upsert_identities,
    upsert_resources,
)
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

CLUSTER = Resource(
    ecosystem=ECO,
    tenant_id=TENANT,
    resource_id="lkc-1",
    resource_type="kafka_cluster",
    display_name="orders",
    parent_id="env-1",
    owner_id="sa-1",
    cloud="aws",
    region="us-east-1",
    created_at=at(6, day=DAY - timedelta(days=30)),
    metadata={"cku": 2, "tags": ("a", "b")},
)
SA = Identity(ECO, TENANT, "sa-1", "service_account", "svc", created_at=at(day=DAY - timedelta(days=5)))
KEY = Identity(ECO, TENANT, "key-1", "api_key", None, metadata={"owner_id": "sa-1", "resource_id": "lkc-1"})
SYSTEM = Identity(ECO, TENANT, UNALLOCATED, "system")
WINDOW = Window.for_day(DAY)


def test_resources_and_identities_round_trip_with_last_seen(db):
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [CLUSTER], seen_at=at(1))
        upsert_identities(tx, ECO, TENANT, [SA, KEY, SYSTEM], seen_at=at(2))
    assert all_resources(db, ECO, TENANT) == [replace(CLUSTER, last_seen_at=at(1))]
    assert identities_overlapping(db, ECO, TENANT, WINDOW) == [
        replace(i, last_seen_at=at(2)) for i in (SYSTEM, KEY, SA)
    ]
    assert all_resources(db, ECO, OTHER_TENANT) == []
    assert identities_overlapping(db, ECO, OTHER_TENANT, WINDOW) == []


def test_identities_made_earlier_in_a_run_are_reused_only_for_unchanged_rows(db):
    with db.transaction() as tx:
        upsert_identities(tx, ECO, TENANT, [SA, KEY], seen_at=at(2))
        upsert_identities(tx, ECO, OTHER_TENANT, [replace(SA, tenant_id=OTHER_TENANT)], seen_at=at(2))
    made = MadeIdentities()
    first = all_identities(db, ECO, TENANT, made)
    assert first == all_identities(db, ECO, TENANT) == [replace(i, last_seen_at=at(2)) for i in (KEY, SA)]
    again = all_identities(db, ECO, TENANT, made)
    assert [a is b for a, b in zip(again, first, strict=True)] == [True, True]
    with db.transaction() as tx:  # a gather renames the service account
        upsert_identities(tx, ECO, TENANT, [replace(SA, display_name="svc-2")], seen_at=at(2))
    key, renamed = all_identities(db, ECO, TENANT, made)
    assert key is first[0]
    assert renamed == replace(SA, display_name="svc-2", last_seen_at=at(2))
    assert all_identities(db, ECO, OTHER_TENANT, made) == [
        replace(SA, tenant_id=OTHER_TENANT, last_seen_at=at(2))
    ]


def test_regathering_keeps_the_first_created_at_and_revives_a_deleted_entity(db):
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [CLUSTER], seen_at=at(1))
        assert mark_deleted(tx, ECO, TENANT, "resource", ["lkc-1", "lkc-unknown"], at(3)) == ["lkc-1"]
    [deleted] = all_resources(db, ECO, TENANT)
    assert (deleted.status, deleted.deleted_at) == ("deleted", at(3))
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [replace(CLUSTER, created_at=None, display_name="orders-2")], at(5))
    [revived] = all_resources(db, ECO, TENANT)
    assert revived == replace(CLUSTER, display_name="orders-2", last_seen_at=at(5))
    newer = at(day=DAY - timedelta(days=1))
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [replace(CLUSTER, created_at=newer)], at(6))
    assert all_resources(db, ECO, TENANT)[0].created_at == newer  # a known creation time from the source wins


def test_a_deleted_entity_keeps_its_first_deletion_time(db):
    with db.transaction() as tx:
        upsert_identities(tx, ECO, TENANT, [SA], seen_at=at(1))
        assert mark_deleted(tx, ECO, TENANT, "identity", ["sa-1"], at(3)) == ["sa-1"]
        assert mark_deleted(tx, ECO, TENANT, "identity", ["sa-1"], at(9)) == []
    [identity] = identities_overlapping(db, ECO, TENANT, WINDOW)
    assert identity.deleted_at == at(3)
    assert db.conn.execute("SELECT status FROM identities").fetchone() == ("deleted",)


def test_system_identities_are_never_marked_deleted(db):
    robot = Identity(ECO, TENANT, "sentinel-x", "system")
    with db.transaction() as tx:
        upsert_identities(tx, ECO, TENANT, [SYSTEM, robot, SA], seen_at=at(1))
        assert mark_deleted(tx, ECO, TENANT, "identity", [UNALLOCATED, "sentinel-x", "sa-1"], at(3)) == [
            "sa-1"
        ]
    assert active_ids(db, ECO, TENANT, "identity", at(4)) == {UNALLOCATED, "sentinel-x"}
    assert active_ids(db, ECO, TENANT, "identity", at(4), include_system=False) == set()


def test_active_ids_follow_the_lifetime_rules(db):
    later = replace(CLUSTER, resource_id="lkc-2", created_at=at(12))
    topic = Resource(ECO, TENANT, "topic-1", "topic", created_at=None)
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [CLUSTER, later, topic], seen_at=at(1))
        mark_deleted(tx, ECO, TENANT, "resource", ["lkc-1"], at(18))
    assert active_ids(db, ECO, TENANT, "resource", at(12)) == {"lkc-1", "lkc-2", "topic-1"}
    assert active_ids(db, ECO, TENANT, "resource", at(11, 59)) == {"lkc-1", "topic-1"}
    assert active_ids(db, ECO, TENANT, "resource", at(18)) == {"lkc-2", "topic-1"}
    assert active_ids(db, ECO, TENANT, "resource", at(18), of_type="kafka_cluster") == {"lkc-2"}
    assert active_ids(db, ECO, OTHER_TENANT, "resource", at(12)) == set()


def test_overlap_is_half_open(db):
    ends_at_start = replace(CLUSTER, resource_id="gone-at-midnight")
    starts_at_end = replace(CLUSTER, resource_id="born-next-day", created_at=WINDOW.end)
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [CLUSTER, ends_at_start, starts_at_end], seen_at=at(1))
        mark_deleted(
            tx, ECO, TENANT, "resource", ["gone-at-midnight"], WINDOW.start - timedelta(microseconds=1)
        )
    assert [r.resource_id for r in resources_overlapping(db, ECO, TENANT, WINDOW)] == ["lkc-1"]
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [ends_at_start], seen_at=at(1))
        mark_deleted(tx, ECO, TENANT, "resource", ["gone-at-midnight"], WINDOW.start)
    assert [r.resource_id for r in resources_overlapping(db, ECO, TENANT, WINDOW)] == [
        "gone-at-midnight",
        "lkc-1",
    ]


def test_entities_of_another_tenant_and_unknown_kinds_are_refused(db):
    with pytest.raises(ValueError, match="resource lkc-1 belongs to"), db.transaction() as tx:
        upsert_resources(tx, ECO, OTHER_TENANT, [CLUSTER], seen_at=at(1))
    with pytest.raises(ValueError, match="entity kind must be 'resource' or 'identity', got 'topic'"):
        active_ids(db, ECO, TENANT, "topic", at(1))
