"""Run leases on a real SQLite file: one run per tenant, a bounded number of runs, dead holders replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chargeback_assets.stages.lanes import RunLanes
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.leases import leases, take_lease, tenant_lane

WAIT_S = 10.0


def opener(path: Path):
    @contextmanager
    def open_database() -> Iterator[ChargebackDatabase]:
        with ChargebackDatabase.open(path) as db:
            yield db

    return open_database


def lanes_for(path: Path, run_id: str, slots: int = 4, finished=lambda run_id: False, **kwargs) -> RunLanes:
    return RunLanes(opener(path), run_id, slots, finished=finished, poll_seconds=0.02, **kwargs)


def held(path: Path) -> dict[str, str]:
    with ChargebackDatabase.open(path) as db:
        return {lease.lane: lease.run_id for lease in leases(db)}


def hold_in_thread(lanes: RunLanes, tenants: list[str]) -> threading.Event:
    done = threading.Event()

    def hold() -> None:
        lanes.hold(tenants, lambda message: None)
        done.set()

    threading.Thread(target=hold, daemon=True).start()
    return done


def test_a_run_holds_its_tenants_and_one_slot_until_it_releases(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    run = lanes_for(path, "run-a")
    run.hold(["beta", "alpha"])
    assert held(path) == {"tenant:alpha": "run-a", "tenant:beta": "run-a", "slot:0": "run-a"}
    run.hold(["alpha"])  # held already: nothing more is taken
    assert len(held(path)) == 3
    run.release()
    assert held(path) == {}
    run.release()  # a second release is harmless


def test_a_second_run_of_the_same_tenant_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    first = lanes_for(path, "run-a")
    first.hold(["alpha"])
    second = lanes_for(path, "run-b")
    messages: list[str] = []
    thread = threading.Thread(target=second.hold, args=(["alpha", "beta"], messages.append), daemon=True)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second run must wait while the first holds alpha"
    assert "tenant:beta" not in held(path), "tenants are taken in sorted order: beta waits behind alpha"
    assert any("waiting for tenant alpha, held by run run-a" in message for message in messages), messages

    first.release()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert held(path) == {"tenant:alpha": "run-b", "tenant:beta": "run-b", "slot:0": "run-b"}
    assert any(message.startswith("took tenant alpha after waiting") for message in messages), messages
    second.release()


def test_runs_of_different_tenants_share_the_slots_and_no_more(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    first, second, third = (lanes_for(path, f"run-{n}", slots=2) for n in range(3))
    first.hold(["alpha"])
    second.hold(["beta"])
    done = hold_in_thread(third, ["gamma"])
    assert not done.wait(0.5), "two slots: a third run must wait"
    assert held(path)["tenant:gamma"] == "run-2", "it holds its tenant while it waits for a slot"

    second.release()
    assert done.wait(WAIT_S)
    assert held(path)["slot:1"] == "run-2"
    first.release()
    third.release()


def test_a_lease_whose_run_is_finished_is_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    lanes_for(path, "dead-run").hold(["alpha"])  # never released: its worker was killed
    survivor = lanes_for(path, "run-b", finished=lambda run_id: run_id == "dead-run")
    done = hold_in_thread(survivor, ["alpha"])
    assert done.wait(WAIT_S)
    assert held(path)["tenant:alpha"] == "run-b"
    survivor.release()


def test_a_lease_whose_heartbeat_stopped_expires(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    ttl = timedelta(seconds=60)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with ChargebackDatabase.open(path) as db:
        with db.transaction() as tx:
            assert take_lease(tx, tenant_lane("alpha"), "run-a", "h:1", start, ttl, lambda r: False) is None
        with db.transaction() as tx:
            blocker = take_lease(tx, tenant_lane("alpha"), "run-b", "h:2", start + ttl, ttl, lambda r: False)
            assert blocker is not None and blocker.run_id == "run-a"
        with db.transaction() as tx:
            late = start + ttl + timedelta(seconds=1)
            assert take_lease(tx, tenant_lane("alpha"), "run-b", "h:2", late, ttl, lambda r: False) is None
        assert {lease.lane: lease.run_id for lease in leases(db)} == {"tenant:alpha": "run-b"}


def test_the_heartbeat_keeps_a_live_lease_from_expiring(tmp_path: Path) -> None:
    path = tmp_path / "chargeback.db"
    holder = lanes_for(path, "run-a", ttl=timedelta(seconds=1), heartbeat_seconds=0.1)
    holder.hold(["alpha"])
    done = hold_in_thread(lanes_for(path, "run-b", ttl=timedelta(seconds=1)), ["alpha"])
    assert not done.wait(2.5), "a renewed lease must not be taken over"
    holder.release()
    assert done.wait(WAIT_S)


def test_slots_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="slots must be at least 1, got 0"):
        lanes_for(tmp_path / "chargeback.db", "run-a", slots=0)
