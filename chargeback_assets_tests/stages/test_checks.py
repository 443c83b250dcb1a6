"""Reconciliation of a stored day with its stored bill, over a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.config import parse_config
from chargeback_assets.engine.models import UNALLOCATED, BillingLine, ChargebackRow, CostType, Identity
from chargeback_assets.stages.checks import (
    DayReconciliation,
    check_reconciliation,
    reconcile_day,
    reconciles,
    unallocated_day,
    unattributed_day,
)
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import replace_billing_day
from chargeback_assets.storage.chargeback import replace_chargeback_day
from chargeback_assets.storage.inventory import upsert_identities
from chargeback_assets.storage.pipeline import get_state, update_state
from chargeback_assets_tests.databases import StorageTarget

ECOSYSTEM, TENANT_ID = "confluent_cloud", "t1"
DAY = date(2026, 3, 16)
MIDNIGHT = datetime(2026, 3, 16, tzinfo=UTC)


def line(resource_id: str, product_type: str, total: str, at: datetime = MIDNIGHT) -> BillingLine:
    return BillingLine(
        ECOSYSTEM,
        TENANT_ID,
        at,
        resource_id,
        "KAFKA",
        product_type,
        Decimal(1),
        Decimal(total),
        Decimal(total),
        env_id="env-1",
    )


def row(resource_id: str | None, product_type: str, identity_id: str, amount: str) -> ChargebackRow:
    return ChargebackRow(
        ecosystem=ECOSYSTEM,
        tenant_id=TENANT_ID,
        timestamp=MIDNIGHT,
        resource_id=resource_id,
        product_category="KAFKA",
        product_type=product_type,
        identity_id=identity_id,
        cost_type=CostType.USAGE,
        amount=Decimal(amount),
        env_id="env-1",
        metadata={"chain_tier": 0},
    )


@pytest.fixture
def data(storage: StorageTarget) -> Iterator[TenantData]:
    raw = {
        "storage": storage.section,
        "tenants": {
            "prod": {
                "ecosystem": ECOSYSTEM,
                "tenant_id": TENANT_ID,
                "start_date": "2026-03-01",
                "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
            }
        },
    }
    db = storage.open()
    yield TenantData(parse_config(raw, {}).tenants["prod"], db)
    db.close()


def test_a_day_is_compared_line_by_line_with_exact_totals(data: TenantData) -> None:
    with data.db.transaction() as tx:
        replace_billing_day(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            DAY,
            [
                line("lkc-1", "KAFKA_NUM_CKU", "10.0000"),
                line("lkc-2", "KAFKA_STORAGE", "5.0000"),
                line("", "SUPPORT", "2.5000"),
                line("lkc-1", "KAFKA_NUM_CKU", "1.0000", at=MIDNIGHT + timedelta(hours=6)),
            ],
        )
        replace_chargeback_day(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            DAY,
            [
                row("lkc-1", "KAFKA_NUM_CKU", "sa-1", "6.9999"),
                row("lkc-1", "KAFKA_NUM_CKU", UNALLOCATED, "3.0001"),
                row("lkc-2", "KAFKA_STORAGE", "sa-2", "4.9999"),
                row(None, "SUPPORT", "sa-1", "1.2500"),
                row(None, "SUPPORT", UNALLOCATED, "1.2500"),
                row("lkc-3", "KAFKA_STORAGE", "sa-3", "0.7500"),
            ],
        )
    assert reconcile_day(data, DAY) == DayReconciliation(
        day=DAY,
        billed=Decimal("18.5000"),
        allocated=Decimal("18.2499"),
        unallocated=Decimal("4.2501"),
        mismatches=(
            "2026-03-16 KAFKA_STORAGE lkc-2: billed 5.0000, rows sum 4.9999",
            "2026-03-16 KAFKA_NUM_CKU lkc-1: billed 1.0000, rows sum 0.0000",
            "2026-03-16 rows without a billing line: KAFKA_STORAGE lkc-3 0.7500",
        ),
        currency="USD",
        lines=4,
        rows=6,
    )
    share = unallocated_day(data, DAY)
    assert (share.billed, share.amount) == (Decimal("18.5000"), Decimal("4.2501"))
    assert share.fraction == Decimal("4.2501") / Decimal("18.5000")


def test_unattributed_is_what_no_gathered_payer_was_charged(data: TenantData) -> None:
    """Payers are the inventory's service accounts, users, pools, principals and teams, even deleted ones;
    a resource, UNALLOCATED, an API key, a stand-in for an unknown `sa-` id and another tenant's service
    account are not."""
    kinds = {
        "sa-1": "service_account",
        "u-1": "user",
        "pool-1": "identity_pool",
        "alice": "principal",
        "payments": "team",
        "key-1": "api_key",
        "sa-gone": "service_account",
    }
    gathered = [Identity(ECOSYSTEM, TENANT_ID, i, kind) for i, kind in kinds.items()]
    gathered[-1] = replace(gathered[-1], deleted_at=MIDNIGHT - timedelta(days=30))
    charges = {
        **dict.fromkeys(["sa-1", "u-1", "pool-1", "alice", "payments", "sa-gone"], "1.0000"),
        "lkc-1": "2.0000",
        UNALLOCATED: "0.5000",
        "key-1": "0.2500",
        "sa-unknown": "0.1250",
        "sa-other": "0.0625",
    }
    with data.db.transaction() as tx:
        upsert_identities(tx, ECOSYSTEM, TENANT_ID, gathered, MIDNIGHT)
        upsert_identities(
            tx, ECOSYSTEM, "t2", [Identity(ECOSYSTEM, "t2", "sa-other", "service_account")], MIDNIGHT
        )
        replace_billing_day(tx, ECOSYSTEM, TENANT_ID, DAY, [line("lkc-1", "KAFKA_NUM_CKU", "8.9375")])
        replace_chargeback_day(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            DAY,
            [row("lkc-1", "KAFKA_NUM_CKU", who, amount) for who, amount in charges.items()],
        )
    share = unattributed_day(data, DAY)
    assert (share.billed, share.amount) == (Decimal("8.9375"), Decimal("2.9375"))
    assert share.fraction == Decimal("2.9375") / Decimal("8.9375")
    assert unallocated_day(data, DAY).amount == Decimal("0.5000")


def test_a_day_without_bill_or_rows_reconciles_to_zero(data: TenantData) -> None:
    assert unallocated_day(data, DAY).fraction == 0
    assert unattributed_day(data, DAY).fraction == 0
    assert reconcile_day(data, DAY) == DayReconciliation(DAY, Decimal(0), Decimal(0), Decimal(0), (), "USD")


def test_a_day_with_billing_but_no_chargeback_rows_fails_even_when_its_lines_cost_nothing(
    data: TenantData,
) -> None:
    """Its rows were removed (or never written): a zero-cost bill must not pass as reconciled either, or the
    emitters would take the day for one emptied at the source."""
    with data.db.transaction() as tx:
        replace_billing_day(tx, ECOSYSTEM, TENANT_ID, DAY, [line("lkc-1", "KAFKA_NUM_CKU", "0.0000")])
    result = check_reconciliation(data, DAY)
    assert (result.mismatches, result.lines, result.rows, result.missing_rows) == ((), 1, 0, True)
    assert not result.passed and reconciles(data, DAY) is False


def calculated(data: TenantData, calculation_id: str, amount: str) -> None:
    """Store a one-line day charged `amount` as calculation `calculation_id`."""
    with data.db.transaction() as tx:
        replace_billing_day(tx, ECOSYSTEM, TENANT_ID, DAY, [line("lkc-1", "KAFKA_NUM_CKU", "10.0000")])
        replace_chargeback_day(tx, ECOSYSTEM, TENANT_ID, DAY, [row("lkc-1", "KAFKA_NUM_CKU", "sa-1", amount)])
        update_state(tx, ECOSYSTEM, TENANT_ID, DAY, calculation_id=calculation_id)


def test_the_verdict_is_stored_for_the_calculation_it_judged(data: TenantData) -> None:
    calculated(data, "calc-1", "10.0000")
    assert check_reconciliation(data, DAY).passed
    state = get_state(data.db, ECOSYSTEM, TENANT_ID, DAY)
    assert (state.reconciled_calculation_id, state.reconciliation_passed) == ("calc-1", True)
    assert state.reconciliation_current

    calculated(data, "calc-2", "9.0000")
    assert not get_state(data.db, ECOSYSTEM, TENANT_ID, DAY).reconciliation_current
    assert reconciles(data, DAY) is False  # a new calculation is judged afresh, not by calc-1's verdict
    state = get_state(data.db, ECOSYSTEM, TENANT_ID, DAY)
    assert (state.reconciled_calculation_id, state.reconciliation_passed) == ("calc-2", False)


def test_a_current_verdict_is_read_not_recomputed(data: TenantData) -> None:
    calculated(data, "calc-1", "10.0000")
    assert check_reconciliation(data, DAY).passed
    with data.db.transaction() as tx:  # the facts change without a new calculation: the verdict stands
        replace_chargeback_day(
            tx, ECOSYSTEM, TENANT_ID, DAY, [row("lkc-1", "KAFKA_NUM_CKU", "sa-1", "1.0000")]
        )
    assert reconciles(data, DAY) is True
    assert check_reconciliation(data, DAY).passed is False  # the check itself always recomputes
    assert reconciles(data, DAY) is False
