from datetime import timedelta

import pytest

from chargeback_assets.storage.pipeline import (
    GatherCounter,
    PipelineRun,
    PipelineState,
    get_counter,
    get_run,
    get_state,
    last_runs,
    recent_runs,
    record_fingerprint,
    record_run,
    recorded_fingerprints,
    set_counter,
    update_state,
)
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at


def test_an_untouched_day_reads_as_nothing_done(db):
    assert get_state(db, ECO, TENANT, DAY) == PipelineState(ECO, TENANT, DAY)


def test_updates_change_only_the_named_fields(db):
    with db.transaction() as tx:
        update_state(tx, ECO, TENANT, DAY, billing_gathered=True, metrics_fetch_failed=True)
        state = update_state(
            tx, ECO, TENANT, DAY, chargeback_calculated=True, calculation_id="calc-1",
            calculation_completed_at=at(4), calculation_run_id="run-1", metrics_fetch_failed=False,
        )  # fmt: skip
    expected = PipelineState(
        ECO, TENANT, DAY, billing_gathered=True, chargeback_calculated=True, calculation_id="calc-1",
        calculation_completed_at=at(4), calculation_run_id="run-1",
    )  # fmt: skip
    assert state == expected
    assert get_state(db, ECO, TENANT, DAY) == expected
    assert get_state(db, ECO, OTHER_TENANT, DAY) == PipelineState(ECO, OTHER_TENANT, DAY)


def test_bad_state_updates_are_refused(db):
    with db.transaction() as tx:
        with pytest.raises(ValueError, match=r"unknown pipeline state field\(s\) \['billing_gatherd'\]"):
            update_state(tx, ECO, TENANT, DAY, billing_gatherd=True)
        with pytest.raises(TypeError, match="billing_gathered must be a bool, got 1"):
            update_state(tx, ECO, TENANT, DAY, billing_gathered=1)
        with pytest.raises(TypeError, match="inventory_errors must be a tuple of strings, got 'down'"):
            update_state(tx, ECO, TENANT, DAY, inventory_errors="down")


def test_inventory_errors_are_kept_as_lists(db):
    errors = ("/iam/v2/api-keys: status 503", 'unreadable response (KeyError: "id")\nline two')
    with db.transaction() as tx:
        update_state(tx, ECO, TENANT, DAY, inventory_errors=errors)
        update_state(tx, ECO, TENANT, DAY, calculation_inventory_errors=errors)
        assert get_state(tx, ECO, TENANT, DAY).calculation_inventory_errors == errors
        update_state(tx, ECO, TENANT, DAY, inventory_errors=())
    state = get_state(db, ECO, TENANT, DAY)
    assert (state.inventory_errors, state.calculation_inventory_errors) == ((), errors)


def test_fingerprints_are_recorded_per_day(db):
    with db.transaction() as tx:
        record_fingerprint(tx, ECO, TENANT, DAY, "fp-a", at(1))
        record_fingerprint(tx, ECO, TENANT, DAY - timedelta(days=1), "fp-b", at(2))
        record_fingerprint(tx, ECO, TENANT, DAY, "fp-c", at(3))
        update_state(tx, ECO, TENANT, DAY + timedelta(days=1), billing_gathered=True)
    days = [DAY - timedelta(days=d) for d in range(-1, 3)]
    assert recorded_fingerprints(db, ECO, TENANT, days) == {DAY: "fp-c", DAY - timedelta(days=1): "fp-b"}
    assert get_state(db, ECO, TENANT, DAY).billing_fingerprint_at == at(3)
    assert recorded_fingerprints(db, ECO, OTHER_TENANT, days) == {}
    assert recorded_fingerprints(db, ECO, TENANT, []) == {}


def test_runs_are_upserted_and_listed_newest_first(db):
    started = PipelineRun("run-1", ECO, TENANT, "Acme", (DAY, DAY + timedelta(days=1)), "running", at(1))
    finished = PipelineRun(
        "run-1", ECO, TENANT, "Acme", (DAY, DAY + timedelta(days=1)), "failed", at(1), at(2), 40, "boom"
    )
    other = PipelineRun("run-2", ECO, TENANT, "Acme", (DAY,), "completed", at(3), at(4), 7)
    with db.transaction() as tx:
        record_run(tx, started)
        assert get_run(tx, ECO, TENANT, "run-1") == started
        record_run(tx, finished)
        record_run(tx, other)
        record_run(tx, PipelineRun("run-1", ECO, OTHER_TENANT, "Globex", (DAY,), "completed", at(1)))
    assert get_run(db, ECO, TENANT, "run-1") == finished
    assert recent_runs(db, ECO, TENANT) == [other, finished]
    assert recent_runs(db, ECO, TENANT, limit=1) == [other]
    assert get_run(db, ECO, TENANT, "run-9") is None


def test_the_last_audited_run_of_each_day_is_the_latest_started_that_covered_it(db):
    before = DAY - timedelta(days=1)
    with db.transaction() as tx:
        record_run(tx, PipelineRun("range", ECO, TENANT, "Acme", (before, DAY), "success", at(1, day=DAY)))
        record_run(tx, PipelineRun("retry", ECO, TENANT, "Acme", (DAY,), "failed", at(3, day=DAY)))
        record_run(tx, PipelineRun("other", ECO, OTHER_TENANT, "Globex", (DAY,), "success", at(5, day=DAY)))
    last = last_runs(db, ECO, TENANT, [before, DAY, DAY + timedelta(days=1)])
    assert {day: (run.run_id, run.status) for day, run in last.items()} == {
        before: ("range", "success"),
        DAY: ("retry", "failed"),
    }
    assert last_runs(db, ECO, TENANT, []) == {}


def test_a_reconciliation_verdict_is_current_only_for_the_calculation_and_bill_it_judged(db):
    with db.transaction() as tx:
        record_fingerprint(tx, ECO, TENANT, DAY, "bill-1", at(1))
        update_state(tx, ECO, TENANT, DAY, calculation_id="calc-1", calculation_fingerprint="bill-1")
        judged = update_state(
            tx, ECO, TENANT, DAY, reconciled_calculation_id="calc-1", reconciliation_passed=True
        )
        rebilled = record_fingerprint(tx, ECO, TENANT, DAY, "bill-2", at(2))
    assert judged.reconciliation_current
    assert not rebilled.reconciliation_current, "the verdict is about the chargeback of the older bill"


def test_gather_counters_persist_per_scan_key(db):
    assert get_counter(db, ECO, TENANT, "identities") == GatherCounter(0, 0)
    with db.transaction() as tx:
        set_counter(tx, ECO, TENANT, "identities", GatherCounter(consecutive_empty=2))
        set_counter(tx, ECO, TENANT, "resources:kafka_cluster", GatherCounter(0, 3))
        set_counter(tx, ECO, TENANT, "identities", GatherCounter(consecutive_empty=3, consecutive_failures=1))
    assert get_counter(db, ECO, TENANT, "identities") == GatherCounter(3, 1)
    assert get_counter(db, ECO, TENANT, "resources:kafka_cluster") == GatherCounter(0, 3)
    assert get_counter(db, ECO, OTHER_TENANT, "identities") == GatherCounter(0, 0)
