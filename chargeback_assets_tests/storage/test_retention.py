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
from chargeback_assets.storage.billing import billing_for_day, billing_strays_for_day, replace_billing_day
from chargeback_assets.storage.chargeback import chargeback_dates, replace_chargeback_day
from chargeback_assets.storage.emissions import emission_records, record_emission
from chargeback_assets.storage.inventory import (
    all_resources,
    mark_deleted,
    upsert_identities,
    upsert_resources,
)
from chargeback_assets.storage.pipeline import get_state, update_state
from chargeback_assets.storage.retention import delete_days, stored_days_before
from chargeback_assets.storage.usage import replace_usage_day, usage_for_day
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at

OLD = DAY - timedelta(days=1)
OLDER = DAY - timedelta(days=2)


def _fill(tx, tenant_id, day):
    line = BillingLine(
        ECO, tenant_id, at(day=day), "lkc-1", "KAFKA", "CKU", Decimal(1), Decimal(1), Decimal(1)
    )
    replace_billing_day(
        tx, ECO, tenant_id, day, [line], [replace(line, timestamp=at(day=day - timedelta(40)))]
    )
    row = ChargebackRow(ECO, tenant_id, at(day=day), "lkc-1", "KAFKA", "CKU", f"sa-{day.day}", CostType.USAGE,
                        Decimal("1.0000"))  # fmt: skip
    replace_chargeback_day(tx, ECO, tenant_id, day, [row])
    replace_usage_day(tx, ECO, tenant_id, day, [UsageRecord("lkc-1", "m", "sa-1", Decimal(1))], {})
    update_state(tx, ECO, tenant_id, day, billing_gathered=True)
    record_emission(tx, ECO, tenant_id, "csv", "chargeback", day, "emitted", at(day=day))


def test_exactly_the_chosen_days_are_dropped_for_that_tenant_only(db):
    gone = Resource(ECO, TENANT, "lkc-old", "kafka_cluster")
    with db.transaction() as tx:
        for tenant_id in (TENANT, OTHER_TENANT):
            _fill(tx, tenant_id, OLDER)
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
    assert stored_days_before(db, ECO, TENANT, DAY) == [OLDER, OLD]
    with db.transaction() as tx:
        deleted = delete_days(tx, ECO, TENANT, [OLDER], DAY)  # OLD is kept, as if a run computed it
    one_day = {
        "billing": 1, "billing_strays": 1, "chargeback_facts": 1, "usage_metrics": 1,
        "usage_fetch_failures": 0, "resolution_identities": 0, "resolution_contexts": 0, "pipeline_state": 1,
        "topic_metrics": 0, "topic_metrics_failures": 0, "topic_attribution_lines": 0,
        "topic_attribution_facts": 0,
    }  # fmt: skip
    assert deleted.by_day == {OLDER: one_day}
    assert deleted.other == {"resources": 1, "identities": 1, "chargeback_dimensions": 1}
    assert chargeback_dates(db, ECO, TENANT) == [OLD, DAY]
    assert billing_for_day(db, ECO, TENANT, OLDER) == billing_strays_for_day(db, ECO, TENANT, OLDER) == []
    assert len(billing_strays_for_day(db, ECO, TENANT, OLD)) == 1
    assert usage_for_day(db, ECO, TENANT, OLDER) == {}
    assert get_state(db, ECO, TENANT, OLDER).billing_gathered is False
    assert get_state(db, ECO, TENANT, OLD).billing_gathered is True
    assert len(billing_for_day(db, ECO, TENANT, OLD)) == 1 and usage_for_day(db, ECO, TENANT, OLD)
    assert [r.resource_id for r in all_resources(db, ECO, TENANT)] == ["lkc-late", "lkc-live"]
    assert len(emission_records(db, ECO, TENANT)) == 3  # the audit trail stays
    assert chargeback_dates(db, ECO, OTHER_TENANT) == [OLDER, OLD, DAY]
    assert stored_days_before(db, ECO, TENANT, DAY) == [OLD]


def test_entities_deleted_on_or_after_the_cutoff_stay(db):
    with db.transaction() as tx:
        upsert_resources(tx, ECO, TENANT, [Resource(ECO, TENANT, "lkc-1", "kafka_cluster")], at(day=OLDER))
        mark_deleted(tx, ECO, TENANT, "resource", ["lkc-1"], at(12, day=OLD))
    with db.transaction() as tx:
        deleted = delete_days(tx, ECO, TENANT, [], OLD)
    assert deleted.other["resources"] == 0
    assert [r.resource_id for r in all_resources(db, ECO, TENANT)] == ["lkc-1"]
