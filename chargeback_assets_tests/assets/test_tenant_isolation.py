"""A run that Dagster made span several tenants keeps each tenant's failure to that tenant (DESIGN §3.8)."""

from pathlib import Path

import dagster as dg

from chargeback_assets.definitions import CHARGEBACK_JOB
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.graph import QUIET, running_graph


def test_a_failing_tenant_does_not_take_the_other_tenants_partitions_with_it(tmp_path: Path) -> None:
    settings = {"acme-prod": {"http": {"max_retries": 0}}}
    with (
        running_graph(tmp_path, days=3, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        day = graph.newest.isoformat()
        graph.sandboxes["acme-prod"].faults.set(
            "server_error", times=None, path_prefix="/billing/", status=500
        )
        result = graph.defs.resolve_job_def(CHARGEBACK_JOB).execute_in_process(
            instance=instance,
            tags={  # the shape a UI backfill of one date over both tenants launches
                "dagster/asset_partition_range_start": f"{day}|acme-prod",
                "dagster/asset_partition_range_end": f"{day}|acme-staging",
            },
            run_config=QUIET,
            raise_on_error=False,
        )
        with ChargebackDatabase.open(graph.db_path) as db:
            staging_lines = billing_for_day(db, "confluent_cloud", "acme-staging", graph.newest)
            prod_lines = billing_for_day(db, "confluent_cloud", "acme-prod", graph.newest)
        billing_partitions = instance.get_materialized_partitions(dg.AssetKey("billing_lines"))

    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "billing_lines"
    message = failure.step_failure_data.error.message
    assert "1 tenant(s) failed" in message and "acme-prod" in message and "acme-staging" not in message
    assert "billing source failed" in message and "127.0.0.1" in message, message

    materialized = {
        str(event.partition): event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("billing_lines")
    }
    assert list(materialized) == [f"{day}|acme-staging"], "only the tenant that succeeded is materialized"
    assert materialized[f"{day}|acme-staging"]["dagster/row_count"].value == len(staging_lines) > 0
    assert prod_lines == [], "nothing of the failed tenant was written"
    assert billing_partitions == {f"{day}|acme-staging"}
