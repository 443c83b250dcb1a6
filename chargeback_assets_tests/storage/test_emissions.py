import pytest

from chargeback_assets.storage.emissions import (
    EmissionRecord,
    PublishedBill,
    emission_records,
    record_emission,
)
from chargeback_assets_tests.storage.conftest import DAY, ECO, OTHER_TENANT, TENANT, at


def test_attempts_are_counted_and_the_latest_outcome_kept(db):
    with db.transaction() as tx:
        first = record_emission(tx, ECO, TENANT, "csv", "chargeback", DAY, "failed", at(1), error="disk full")
        record_emission(tx, ECO, TENANT, "prometheus", "chargeback", DAY, "skipped", at(1))
        last = record_emission(tx, ECO, TENANT, "csv", "chargeback", DAY, "emitted", at(2))
    assert first == EmissionRecord(ECO, TENANT, "csv", "chargeback", DAY, "failed", 1, "disk full", at(1))
    assert last == EmissionRecord(ECO, TENANT, "csv", "chargeback", DAY, "emitted", 2, None, at(2))
    assert emission_records(db, ECO, TENANT) == [
        last,
        EmissionRecord(ECO, TENANT, "prometheus", "chargeback", DAY, "skipped", 1, None, at(1)),
    ]
    assert emission_records(db, ECO, TENANT, emitter_name="prometheus", day=DAY)[0].status == "skipped"
    assert emission_records(db, ECO, OTHER_TENANT) == []


def test_an_unknown_status_is_refused(db):
    with (
        pytest.raises(ValueError, match=r"emission status must be one of .* got 'done'"),
        db.transaction() as tx,
    ):
        record_emission(tx, ECO, TENANT, "csv", "chargeback", DAY, "done", at(1))


def test_the_published_bill_outlives_later_attempts_and_a_restatement_stays_marked(db):
    def record(status, when, published=None):
        with db.transaction() as tx:
            return record_emission(
                tx, ECO, TENANT, "csv", "chargeback", DAY, status, at(when), None, published
            )

    assert record("emitted", 1, PublishedBill("fp-1", settled=False)).published == PublishedBill(
        "fp-1", False
    )
    assert record("failed", 2).published == PublishedBill("fp-1", False)  # what is out there is unchanged
    assert record("emitted", 3, PublishedBill("fp-2", True, restated=True)).published == PublishedBill(
        "fp-2", True, True
    )
    assert record("emitted", 4, PublishedBill("fp-2", True)).published == PublishedBill("fp-2", True, True)
