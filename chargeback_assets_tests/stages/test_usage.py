"""Unreachable metrics are never 'no usage': the stage fails, and only on the final attempt falls back."""

from datetime import UTC, datetime, timedelta

import pytest

from chargeback_assets.engine.calculate import METRICS_FAILED_DETAIL
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.chargeback import calculate_day
from chargeback_assets.stages.checks import metrics_failures, reconcile_day
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.scope import StageError
from chargeback_assets.stages.usage import fetch_usage
from chargeback_assets.storage.chargeback import chargeback_rows_for_day

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
USAGE_PRODUCTS = {"KAFKA_NETWORK_READ", "KAFKA_NETWORK_WRITE", "KAFKA_NUM_CKUS", "FLINK_NUM_CFUS"}


def test_metrics_failure_raises_then_falls_back_visibly_on_the_final_attempt(tmp_path) -> None:
    with SandboxServer(generate_org("small", seed=5, end_date=TODAY, days=5)) as server:
        tenant = sandbox_tenant(
            server.org,
            server,
            tenant_id="t1",
            start_date=TODAY - timedelta(days=5),
            metrics={"max_attempts": 1},
        )
        config = write_config(tmp_path / "c.yaml", {"t1": tenant}, tmp_path / "c.db")
        with ChargebackResource(config_path=str(config)).scope("t1") as scope:
            gather_billing(scope, [DAY])
            gather_inventory(scope, [DAY])
            server.faults.set("server_error", times=None, path_prefix="/api/v1/", status=503)
            with pytest.raises(StageError, match=rf"tenant t1, date {DAY}: metrics source failed"):
                fetch_usage(scope, [DAY], final_attempt=False)
            [usage] = fetch_usage(scope, [DAY], final_attempt=True)
            assert usage.failures and usage.records == 0
            assert metrics_failures(scope, DAY)
            resolve_day(scope, DAY)
            calculate_day(scope, DAY)
            rows = chargeback_rows_for_day(scope.db, "confluent_cloud", "t1", DAY)
            fell_back = [
                r for r in rows if r.product_type in USAGE_PRODUCTS and r.resource_id in usage.failures
            ]
            assert fell_back, "the day has usage-priced lines on resources whose metrics failed"
            assert {r.allocation_detail for r in fell_back} == {METRICS_FAILED_DETAIL}
            assert "usage_ratio" not in {r.allocation_method for r in fell_back}, "no usage tier could answer"
            assert reconcile_day(scope, DAY).mismatches == ()
