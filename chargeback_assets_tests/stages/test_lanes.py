"""Run leases on a real SQLite file: one run per tenant, a bounded number of runs, dead holders replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from chargeback_assets.stages.lanes import RunLanes
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.leases import leases, take_lease, tenant_lane
from chargeback_assets_tests.databases import StorageTarget

WAIT_S = 10.0


def opener(storage: StorageTarget):
    @contextmanager
    def open_database() -> Iterator[ChargebackDatabase]:
        with storage.open() as db:
            yield db

    return open_database


def lanes_for(
    storage: StorageTarget, run_id: str, slots: int = 4, finished=lambda run_id: False, **kwargs
) -> RunLanes:
    return RunLanes(opener(storage), run_id, slots, finished=finished, poll_seconds=0.02, **kwargs)


def held(storage: StorageTarget) -> dict[str, str]:
    with storage.open() as db:
        return {lease.lane: lease.run_id for lease in leases(db)}


def hold_in_thread(lanes: RunLanes, tenants: list[str]) -> threading.Event:
    done = threading.Event()

    def hold() -> None:
        lanes.hold(tenants, lambda message: None)
        done.set()

    threading.Thread(target=hold, daemon=True).start()
    return done


def test_a_run_holds_its_tenants_and_one_slot_until_it_releases(storage: StorageTarget) -> None:
    run = lanes_for(storage, "run-a")
    run.hold(["beta", "alpha"])
    assert held(storage) == {"tenant:alpha": "run-a", "tenant:beta": "run-a", "slot:0": "run-a"}
    run.hold(["alpha"])  # held already: nothing more is taken
    assert len(held(storage)) == 3
    run.release()
    assert held(storage) == {}
    run.release()  # a second release is harmless


def test_a_second_run_of_the_same_tenant_waits_for_the_first(storage: StorageTarget) -> None:
    first = lanes_for(storage, "run-a")
    first.hold(["alpha"])
    second = lanes_for(storage, "run-b")
    messages: list[str] = []
    thread = threading.Thread(target=second.hold, args=(["alpha", "beta"], messages.append), daemon=True)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second run must wait while the first holds alpha"
    assert "tenant:beta" not in held(storage), "tenants are taken in sorted order: beta waits behind alpha"
    assert any("waiting for tenant alpha, held by run run-a" in message for message in messages), messages

    first.release()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert held(storage) == {"tenant:alpha": "run-b", "tenant:beta": "run-b", "slot:0": "run-b"}
    assert any(message.startswith("took tenant alpha after waiting") for message in messages), messages
    second.release()


def test_runs_of_different_tenants_share_the_slots_and_no_more(storage: StorageTarget) -> None:
    first, second, third = (lanes_for(storage, f"run-{n}", slots=2) for n in range(3))
    first.hold(["alpha"])
    second.hold(["beta"])
    done = hold_in_thread(third, ["gamma"])
    assert not done.wait(0.5), "two slots: a third run must wait"
    assert held(storage)["tenant:gamma"] == "run-2", "it holds its tenant while it waits for a slot"

    second.release()
    assert done.wait(WAIT_S)
    assert held(storage)["slot:1"] == "run-2"
    first.release()
    third.release()


def test_a_lease_whose_run_is_finished_is_taken_over_at_once(storage: StorageTarget) -> None:
    lanes_for(storage, "dead-run").hold(["alpha"])  # never released: its worker was killed
    survivor = lanes_for(storage, "run-b", finished=lambda run_id: run_id == "dead-run")
    done = hold_in_thread(survivor, ["alpha"])
    assert done.wait(WAIT_S)
    assert held(storage)["tenant:alpha"] == "run-b"
    survivor.release()


def test_a_lease_whose_heartbeat_stopped_expires(storage: StorageTarget) -> None:
    ttl = timedelta(seconds=60)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with storage.open() as db:
        with db.transaction() as tx:
            assert take_lease(tx, tenant_lane("alpha"), "run-a", "h:1", start, ttl, lambda r: False) is None
        with db.transaction() as tx:
            blocker = take_lease(tx, tenant_lane("alpha"), "run-b", "h:2", start + ttl, ttl, lambda r: False)
            assert blocker is not None and blocker.run_id == "run-a"
        with db.transaction() as tx:
            late = start + ttl + timedelta(seconds=1)
            assert take_lease(tx, tenant_lane("alpha"), "run-b", "h:2", late, ttl, lambda r: False) is None
        assert {lease.lane: lease.run_id for lease in leases(db)} == {"tenant:alpha": "run-b"}


def test_the_heartbeat_keeps_a_live_lease_from_expiring(storage: StorageTarget) -> None:
    holder = lanes_for(storage, "run-a", ttl=timedelta(seconds=1), heartbeat_seconds=0.1)
    holder.hold(["alpha"])
    done = hold_in_thread(lanes_for(storage, "run-b", ttl=timedelta(seconds=1)), ["alpha"])
    assert not done.wait(2.5), "a renewed lease must not be taken over"
    holder.release()
    assert done.wait(WAIT_S)


def test_slots_must_be_positive(storage: StorageTarget) -> None:
    with pytest.raises(ValueError, match="slots must be at least 1, got 0"):
        lanes_for(storage, "run-a", slots=0)
