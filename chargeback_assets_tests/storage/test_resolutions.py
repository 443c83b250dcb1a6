from decimal import Decimal

import pytest

from chargeback_assets.engine.models import Identity, IdentityResolution, IdentitySet
from chargeback_assets.storage.inventory import IDENTITY_SNAPSHOT_COLUMNS, identity_snapshot
from chargeback_assets.storage.migrations import MIGRATIONS
from chargeback_assets.storage.resolutions import replace_resolutions_day, resolutions_for_day
from chargeback_assets_tests.databases import StorageTarget
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


def test_lines_sharing_a_resolution_read_back_sharing_one(db):
    """A resource's lines are resolved once (stages/resolution.py); stored per line, read back as one."""
    cluster = IdentityResolution(
        resource_active=IdentitySet([OWNER]), context={"usage_by_owner": {"sa-owner": Decimal("2.5")}}
    )
    other = IdentityResolution(resource_active=IdentitySet([KEY]))
    with db.transaction() as tx:
        replace_resolutions_day(tx, ECO, TENANT, DAY, {"read": cluster, "write": cluster, "sr": other})
    stored = resolutions_for_day(db, ECO, TENANT, DAY)
    assert stored == {"read": cluster, "sr": other, "write": cluster}
    assert stored["read"] is stored["write"] and stored["sr"] is not stored["read"]


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


def test_a_day_resolved_before_migration_12_reads_back_as_it_was_written(blank_storage: StorageTarget):
    """Rows in the old one-row-per-(line, scope, identity) table move to the day's snapshots, identities in
    the handler's order, a snapshot shared by two lines stored once, and the old table is gone."""
    before_12 = [m for m in MIGRATIONS if m.version < 12]
    with blank_storage.open(before_12) as old, old.transaction() as tx:
        rows = []
        for line, scope, identities in (
            ("line-b", "resource_active", [OWNER, KEY]),
            ("line-b", "metrics_derived", [UNKNOWN, OWNER]),
            ("line-a", "resource_active", [OWNER]),
        ):
            for position, identity in enumerate(identities):
                snapshot = identity_snapshot(ECO, TENANT, identity, "test")
                rows.append((ECO, TENANT, DAY.isoformat(), line, scope, position, *snapshot))
        tx.conn.executemany(
            "INSERT INTO identity_resolutions (ecosystem, tenant_id, date, line_id, scope, position, "
            f"{IDENTITY_SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 13)})",
            rows,
        )
        tx.conn.executemany(
            "INSERT INTO resolution_contexts (ecosystem, tenant_id, date, line_id, context_json) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (ECO, TENANT, DAY.isoformat(), "line-a", "{}"),
                (ECO, TENANT, DAY.isoformat(), "line-b", '{"api_key_to_owner":{"key-1":"sa-owner"}}'),
                (ECO, TENANT, DAY.isoformat(), "line-c", "{}"),
            ],
        )
    with blank_storage.open() as db:
        stored = resolutions_for_day(db, ECO, TENANT, DAY)
        snapshots = db.conn.execute("SELECT COUNT(*) FROM resolution_identities").fetchone()[0]
        assert "identity_resolutions" not in db.dialect.tables(db.conn)
    assert stored == {
        "line-a": IdentityResolution(resource_active=IdentitySet([OWNER])),
        "line-b": IdentityResolution(
            resource_active=IdentitySet([OWNER, KEY]),
            metrics_derived=IdentitySet([UNKNOWN, OWNER]),
            context={"api_key_to_owner": {"key-1": "sa-owner"}},
        ),
        "line-c": IdentityResolution(),
    }
    assert snapshots == 3


def test_lines_naming_the_same_identity_store_it_once(db):
    shared = IdentityResolution(resource_active=IdentitySet([OWNER, KEY]))
    with db.transaction() as tx:
        replace_resolutions_day(tx, ECO, TENANT, DAY, {f"line-{i}": shared for i in range(50)})
    assert db.conn.execute("SELECT COUNT(*) FROM resolution_identities").fetchone()[0] == 2
    stored = resolutions_for_day(db, ECO, TENANT, DAY)
    assert all(resolution == shared for resolution in stored.values()) and len(stored) == 50
