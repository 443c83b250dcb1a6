"""Retention over a real SQLite file: the run's own days and the entities they read stay, a larger jump than
retention_max_days_per_run is refused whole."""

from datetime import UTC, date, datetime, timedelta

import pytest

from chargeback_assets.config import parse_config
from chargeback_assets.engine.models import Resource
from chargeback_assets.stages.retention import apply_retention
from chargeback_assets.stages.scope import StageError, TenantData
from chargeback_assets.storage.inventory import all_resources, mark_deleted, upsert_resources
from chargeback_assets.storage.pipeline import update_state
from chargeback_assets_tests.databases import StorageTarget

ECOSYSTEM, TENANT_ID = "confluent_cloud", "t1"
TODAY = date(2026, 3, 20)
HORIZON = TODAY - timedelta(days=10)


def tenant_data(storage: StorageTarget, max_days: int) -> TenantData:
    raw = {
        "storage": storage.section,
        "tenants": {
            "prod": {
                "ecosystem": ECOSYSTEM,
                "tenant_id": TENANT_ID,
                "start_date": "2026-01-01",
                "retention_days": 10,
                "retention_max_days_per_run": max_days,
                "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
            }
        },
    }
    return TenantData(parse_config(raw, {}).tenants["prod"], storage.open())


def stored(data: TenantData, days: list[date]) -> None:
    with data.db.transaction() as tx:
        for day in days:
            update_state(tx, ECOSYSTEM, TENANT_ID, day, chargeback_calculated=True)


def test_the_computed_days_and_the_entities_they_read_stay(storage: StorageTarget) -> None:
    data = tenant_data(storage, max_days=3)
    old = [HORIZON - timedelta(days=offset) for offset in (5, 4, 3, 2, 1)]
    stored(data, old)
    with data.db.transaction() as tx:
        upsert_resources(tx, ECOSYSTEM, TENANT_ID, [Resource(ECOSYSTEM, TENANT_ID, "lkc-1", "kafka_cluster")],
                         datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
        mark_deleted(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            "resource",
            ["lkc-1"],
            datetime.combine(old[3], datetime.min.time(), UTC),
        )
    retention = apply_retention(data, TODAY, computed=old[2:])
    assert retention.horizon == HORIZON
    assert retention.removed == old[:2] and retention.kept == tuple(old[2:])
    assert [r.resource_id for r in all_resources(data.db, ECOSYSTEM, TENANT_ID)] == ["lkc-1"]
    data.db.close()


def test_more_days_than_the_limit_are_refused_and_nothing_is_removed(storage: StorageTarget) -> None:
    data = tenant_data(storage, max_days=2)
    old = [HORIZON - timedelta(days=offset) for offset in (3, 2, 1)]
    stored(data, old)
    refusal = r"retention refused, nothing removed: .* dates 2026-03-07\.\.2026-03-09 \(3 days\), more than"
    with pytest.raises(StageError, match=refusal + r" retention_max_days_per_run \(2\)"):
        apply_retention(data, TODAY, computed=[TODAY - timedelta(days=1)])
    assert apply_retention(data, TODAY, computed=old).removed == []
    data.db.close()
