from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from chargeback_assets.engine.models import (
    BillingLine,
    ChargebackRow,
    CostType,
    Identity,
    Resource,
    UsageRecord,
)
from chargeback_assets.storage.billing import billing_for_day, replace_billing_day
from chargeback_assets.storage.chargeback import chargeback_dates, replace_chargeback_day
from chargeback_assets.storage.emissions import emission_records, record_emission
from chargeback_assets.storage.inventory import (
    all_resources,
    mark_deleted,
    upsert_identities,
    upsert_resources,
)
from chargeback_assets.storage.pipeline import get_state, update_state
from chargeback_assets.storage.retention import delete_before
from chargeback_assets.storage.usage import replace_usage_day, usage_for_day
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

OLD = DAY - timedelta(days=1)


def _fill(tx, tenant_id, day):
    line = BillingLine(
        ECO, tenant_id, at(day=day), "lkc-1", "KAFKA", "CKU", Decimal(1), Decimal(1), Decimal(1)
    )
    replace_billing_day(tx, ECO, tenant_id, day, [line])
    row = ChargebackRow(ECO, tenant_id, at(day=day), "lkc-1", "KAFKA", "CKU", f"sa-{day.day}", CostType.USAGE,
                        Decimal("1.0000"))  # fmt: skip
    replace_chargeback_day(tx, ECO, tenant_id, day, [row])
    replace_usage_day(tx, ECO, tenant_id, day, [UsageRecord("lkc-1", "m", "sa-1", Decimal(1))], {})
    update_state(tx, ECO, tenant_id, day, billing_gathered=True)
    record_emission(tx, ECO, tenant_id, "csv", "chargeback", day, "emitted", at(day=day))


def test_history_before_the_day_is_dropped_for_that_tenant_only(db):
    gone = Resource(ECO, TENANT, "lkc-old", "kafka_cluster")
    with db.transaction() as tx:
        for tenant_id in (TENANT, OTHER_TENANT):
            _fill(tx, tenant_id, OLD)
            _fill(tx, tenant_id, DAY)
        upsert_resources(
            tx,
            ECO,
            TENANT,
            [gone, replace(gone, resource_id="lkc-late"), replace(gone, resource_id="lkc-live")],
            at(),
        )
        upsert_identities(tx, ECO, TENANT, [Identity(ECO, TENANT, "sa-old", "service_account")], at())
        mark_deleted(tx, ECO, TENANT, "resource", ["lkc-old"], at(23, day=OLD))
        mark_deleted(tx, ECO, TENANT, "resource", ["lkc-late"], at(0, day=DAY))
        mark_deleted(tx, ECO, TENANT, "identity", ["sa-old"], at(1, day=OLD))
    with db.transaction() as tx:
        deleted = delete_before(tx, ECO, TENANT, DAY)
    assert deleted == {
        "billing": 1, "chargeback_facts": 1, "usage_metrics": 1, "usage_fetch_failures": 0,
        "identity_resolutions": 0, "resolution_contexts": 0, "pipeline_state": 1, "resources": 1,
        "identities": 1, "chargeback_dimensions": 1,
    }  # fmt: skip
    assert chargeback_dates(db, ECO, TENANT) == [DAY]
    assert billing_for_day(db, ECO, TENANT, OLD) == []
    assert usage_for_day(db, ECO, TENANT, OLD) == {}
    assert get_state(db, ECO, TENANT, OLD).billing_gathered is False
    assert get_state(db, ECO, TENANT, DAY).billing_gathered is True
    assert [r.resource_id for r in all_resources(db, ECO, TENANT)] == ["lkc-late", "lkc-live"]
    assert len(emission_records(db, ECO, TENANT)) == 2  # the audit trail stays
    assert chargeback_dates(db, ECO, OTHER_TENANT) == [OLD, DAY]
    assert len(billing_for_day(db, ECO, OTHER_TENANT, OLD)) == 1
