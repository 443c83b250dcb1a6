from decimal import Decimal

import pytest

from chargeback_assets.engine.models import Identity, IdentityResolution, IdentitySet
from chargeback_assets.storage.resolutions import replace_resolutions_day, resolutions_for_day
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

OWNER = Identity(
    ECO, TENANT, "sa-owner", "service_account", "owner", created_at=at(1), metadata={"team": "x"}
)
KEY = Identity(ECO, TENANT, "key-1", "api_key", metadata={"owner_id": "sa-owner"})
UNKNOWN = Identity(ECO, TENANT, "u-unknown", "principal", last_seen_at=at(3), deleted_at=at(4))


def test_resolutions_round_trip_with_identity_order_and_decimal_context(db):
    busy = IdentityResolution(
        resource_active=IdentitySet([OWNER, KEY]),
        metrics_derived=IdentitySet([UNKNOWN, OWNER]),
        context={"api_key_to_owner": {"key-1": "sa-owner"}, "usage_by_owner": {"sa-owner": Decimal("800.5")}},
    )
    empty = IdentityResolution()
    with db.transaction() as tx:
        assert replace_resolutions_day(tx, ECO, TENANT, DAY, {"line-b": busy, "line-a": empty}) == 2
    stored = resolutions_for_day(db, ECO, TENANT, DAY)
    assert list(stored) == ["line-a", "line-b"]
    assert stored["line-a"] == empty
    assert stored["line-b"] == busy
    assert stored["line-b"].metrics_derived.ids() == ["u-unknown", "sa-owner"]
    assert stored["line-b"].context["usage_by_owner"]["sa-owner"] == Decimal("800.5")
    assert resolutions_for_day(db, ECO, OTHER_TENANT, DAY) == {}


def test_replacing_a_day_drops_lines_no_longer_resolved(db):
    with db.transaction() as tx:
        replace_resolutions_day(tx, ECO, TENANT, DAY, {"old": IdentityResolution(IdentitySet([KEY]))})
        replace_resolutions_day(tx, ECO, TENANT, DAY, {"new": IdentityResolution(IdentitySet([OWNER]))})
    assert resolutions_for_day(db, ECO, TENANT, DAY) == {"new": IdentityResolution(IdentitySet([OWNER]))}


def test_an_identity_of_another_tenant_is_refused(db):
    stranger = Identity(ECO, OTHER_TENANT, "sa-9", "service_account")
    with pytest.raises(ValueError, match="line-1: resource_active identity sa-9 belongs to"):
        with db.transaction() as tx:
            replace_resolutions_day(
                tx, ECO, TENANT, DAY, {"line-1": IdentityResolution(IdentitySet([stranger]))}
            )
