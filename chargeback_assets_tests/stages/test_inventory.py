"""Inventory gathers against the sandbox: lifecycle, deletion detection and its safety thresholds.

Scenarios 11-14 of core-engine-spec.md §10, with the counters kept in the database (every Dagster run is a
new process) and UNALLOCATED never deleted.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargeback_assets.engine.models import UNALLOCATED
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.scope import StageError, TenantScope
from chargeback_assets.stages.suspension import Suspension, suspension
from chargeback_assets.storage.inventory import active_ids
from chargeback_assets.storage.pipeline import get_state
from chargeback_assets_tests.databases import StorageTarget

IDENTITY_LISTS = ("service_accounts", "users", "api_keys", "identity_providers")
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(generate_org("small", seed=3, end_date=TODAY, days=10)) as server:
        yield server


@contextmanager
def tenant_scope(
    tmp_path: Path, storage: StorageTarget, server: SandboxServer, **settings: Any
) -> Iterator[TenantScope]:
    tenant = sandbox_tenant(
        server.org,
        server,
        tenant_id="t1",
        start_date=TODAY - timedelta(days=10),
        http={"max_retries": 0},
        **settings,
    )
    config = write_config(tmp_path / "chargeback.yaml", {"t1": tenant}, storage.section)
    with ChargebackResource(config_path=str(config)).scope("t1") as scope:
        yield scope


def active_identities(scope: TenantScope) -> set[str]:
    return active_ids(scope.db, scope.ecosystem, scope.tenant_id, "identity", datetime.now(UTC))


def remove_all_identities(server: SandboxServer) -> dict[str, list]:
    removed = {name: list(server.org.objects[name]) for name in IDENTITY_LISTS}
    for name in IDENTITY_LISTS:
        server.org.objects[name].clear()
    return removed


def test_missing_entities_are_marked_deleted_but_unallocated_never(tmp_path, storage, sandbox) -> None:
    with tenant_scope(tmp_path, storage, sandbox) as scope:
        first = gather_inventory(scope, DAYS)
        assert first.complete and first.identities > 0
        before = active_identities(scope)
        assert UNALLOCATED in before
        gone = [sa["id"] for sa in sandbox.org.objects["service_accounts"][:2]]
        del sandbox.org.objects["service_accounts"][:2]
        second = gather_inventory(scope, DAYS)
        assert sorted(second.deleted_identities) == sorted(gone)
        assert active_identities(scope) == before - set(gone)
        assert all(get_state(scope.db, "confluent_cloud", "t1", day).resources_gathered for day in DAYS)


def test_a_failing_endpoint_makes_the_gather_incomplete_and_deletes_nothing(
    tmp_path, storage, sandbox
) -> None:
    with tenant_scope(tmp_path, storage, sandbox) as scope:
        gather_inventory(scope, DAYS)
        before = active_identities(scope)
        del sandbox.org.objects["service_accounts"][:2]
        sandbox.faults.set("server_error", times=None, path_prefix="/iam/v2/users", status=500)
        summary = gather_inventory(scope, DAYS)
        assert not summary.complete
        assert any("/iam/v2/users" in error for error in summary.errors)
        assert summary.deleted_identities == []
        assert active_identities(scope) == before
        state = get_state(scope.db, "confluent_cloud", "t1", DAYS[0])
        assert not state.resources_gathered
        assert state.inventory_errors == tuple(summary.errors)

        sandbox.faults.clear()
        assert gather_inventory(scope, DAYS).complete
        assert get_state(scope.db, "confluent_cloud", "t1", DAYS[0]).inventory_errors == ()


def test_by_default_an_empty_gather_never_deletes(tmp_path, storage, sandbox) -> None:
    """Scenario 11: threshold -1 — an API answering 'nothing' looks exactly like an outage."""
    with tenant_scope(tmp_path, storage, sandbox) as scope:
        gather_inventory(scope, DAYS)
        before = active_identities(scope)
        remove_all_identities(sandbox)
        for _ in range(3):
            assert gather_inventory(scope, DAYS).deleted_identities == []
        assert active_identities(scope) == before


def test_empty_gathers_delete_after_the_threshold_and_a_non_empty_one_resets(
    tmp_path, storage, sandbox
) -> None:
    """Scenario 12: threshold 2 — the first empty gather waits, the second deletes; a real gather resets."""
    with tenant_scope(tmp_path, storage, sandbox, zero_gather_deletion_threshold=2) as scope:
        gather_inventory(scope, DAYS)
        removed = remove_all_identities(sandbox)
        assert gather_inventory(scope, DAYS).deleted_identities == []
        for name, items in removed.items():
            sandbox.org.objects[name].extend(items)
        assert gather_inventory(scope, DAYS).deleted_identities == [], "a non-empty gather resets the count"
        remove_all_identities(sandbox)
        assert gather_inventory(scope, DAYS).deleted_identities == []
        deleted = gather_inventory(scope, DAYS).deleted_identities
        assert deleted and UNALLOCATED not in deleted
        assert active_identities(scope) == {UNALLOCATED}


def test_consecutive_failed_gathers_suspend_the_tenant_until_a_success(tmp_path, storage, sandbox) -> None:
    """Scenario 14 with threshold 2: nothing reachable twice -> suspended; one good gather resets."""
    with tenant_scope(tmp_path, storage, sandbox, gather_failure_threshold=2) as scope:
        sandbox.faults.set("server_error", times=None, path_prefix="/", status=503)
        with pytest.raises(
            StageError, match=r"tenant t1, dates .*: inventory source failed: .*1 consecutive"
        ):
            gather_inventory(scope, DAYS)
        assert suspension(scope) is None
        with pytest.raises(StageError, match="2 consecutive failed gathers, threshold 2"):
            gather_inventory(scope, DAYS)
        assert suspension(scope) == Suspension("t1", "inventory", failures=2, threshold=2)
        sandbox.faults.clear()
        assert gather_inventory(scope, DAYS).complete
        assert suspension(scope) is None
