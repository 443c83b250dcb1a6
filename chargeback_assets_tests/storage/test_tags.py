import pytest

from chargeback_assets.storage.tags import EntityTag, list_tags, remove_tag, set_tag, tags_for
from chargeback_assets_tests.storage.conftest import ECO, OTHER_TENANT, TENANT, at


def _tag(entity_type, entity_id, key, value, tenant_id=TENANT, hour=1):
    return EntityTag(ECO, tenant_id, entity_type, entity_id, key, value, "alice", at(hour))


def test_tags_are_set_overwritten_listed_and_removed(db):
    with db.transaction() as tx:
        set_tag(tx, _tag("identity", "sa-1", "team", "payments"))
        set_tag(tx, _tag("resource", "lkc-1", "cost_center", "cc-1"))
        set_tag(tx, _tag("identity", "sa-1", "team", "billing", hour=2))
        set_tag(tx, _tag("identity", "sa-1", "team", "other-tenant", tenant_id=OTHER_TENANT))
    assert list_tags(db, ECO, TENANT) == [
        _tag("identity", "sa-1", "team", "billing", hour=2),
        _tag("resource", "lkc-1", "cost_center", "cc-1"),
    ]
    assert list_tags(db, ECO, TENANT, entity_type="resource", entity_id="lkc-1") == [
        _tag("resource", "lkc-1", "cost_center", "cc-1")
    ]
    assert tags_for(db, ECO, TENANT) == {
        ("identity", "sa-1"): {"team": "billing"},
        ("resource", "lkc-1"): {"cost_center": "cc-1"},
    }
    with db.transaction() as tx:
        assert remove_tag(tx, ECO, TENANT, "identity", "sa-1", "team") is True
        assert remove_tag(tx, ECO, TENANT, "identity", "sa-1", "team") is False
    assert tags_for(db, ECO, TENANT) == {("resource", "lkc-1"): {"cost_center": "cc-1"}}
    assert tags_for(db, ECO, OTHER_TENANT) == {("identity", "sa-1"): {"team": "other-tenant"}}


def test_bad_tags_are_refused(db):
    with db.transaction() as tx:
        with pytest.raises(ValueError, match=r"tag entity type must be one of .* got 'topic'"):
            set_tag(tx, _tag("topic", "t-1", "team", "x"))
        with pytest.raises(ValueError, match="tag key on identity sa-1 must not be empty"):
            set_tag(tx, _tag("identity", "sa-1", " ", "x"))
