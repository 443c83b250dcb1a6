"""Calculating a tenant's days with each allocated ahead, in a thread of its own, while the one before it is
written: the same rows as one day after the other, committed in day order."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chargeback_assets.resources import ChargebackResource
from chargeback_assets.runtime import build_runtime
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.chargeback import calculate_day, calculate_days
from chargeback_assets.stages.checks import reconcile_day
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.usage import fetch_usage
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.pipeline import get_state

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=offset) for offset in (3, 2, 1)]


@pytest.fixture
def resolved(tmp_path, storage) -> Iterator[tuple[ChargebackResource, TenantScope]]:
    """Tenant t1 on the small sandbox with three days gathered and resolved, nothing calculated."""
    org = generate_org("small", seed=5, end_date=TODAY, days=5)
    with SandboxServer(org) as server:
        tenant = sandbox_tenant(org, server, tenant_id="t1", start_date=DAYS[0])
        resource = ChargebackResource(
            config_path=str(write_config(tmp_path / "c.yaml", {"t1": tenant}, storage.section))
        )
        runtime = build_runtime(resource.tenant("t1"), None)
        try:
            with resource.database() as db:
                scope = TenantScope(resource.tenant("t1"), db, runtime)
                gather_billing(scope, DAYS)
                gather_inventory(scope, DAYS)
                fetch_usage(scope, DAYS)
                for day in DAYS:
                    resolve_day(scope, day)
                yield resource, scope
        finally:
            runtime.close()


def test_days_allocated_ahead_are_written_in_order_with_the_rows_of_one_day_at_a_time(resolved) -> None:
    resource, scope = resolved
    results = list(calculate_days(scope, lambda: resource.reader(scope), DAYS, run_id="run-1"))
    assert [result.day for result in results] == DAYS
    ahead = {day: chargeback_rows_for_day(scope.db, scope.ecosystem, scope.tenant_id, day) for day in DAYS}
    completed = [
        get_state(scope.db, scope.ecosystem, scope.tenant_id, day).calculation_completed_at for day in DAYS
    ]
    assert completed == sorted(completed), "committed one day after the other, in day order"
    for day, result in zip(DAYS, results, strict=True):
        assert reconcile_day(scope, day).passed
        assert result.rows == len(ahead[day]) > 0
        calculate_day(scope, day)
        assert chargeback_rows_for_day(scope.db, scope.ecosystem, scope.tenant_id, day) == ahead[day]
