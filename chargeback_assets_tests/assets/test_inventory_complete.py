"""A day calculated from an inventory that is known incomplete is never published: on a tenant's first run
with an identity endpoint down for the whole run, the day is calculated (its figures visible), its
`inventory_complete` check fails, its emission is blocked, and the next run with a complete gather
calculates it again and publishes it."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.stages.emission import PIPELINE
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets_tests.graph import Graph, running_graph

TENANT = "acme-prod"


def charged(graph: Graph, day) -> dict[str, Decimal]:
    """identity -> what the day's stored chargeback charges it."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with ChargebackDatabase.open(graph.db_path) as db:
        for row in chargeback_rows_for_day(db, "confluent_cloud", TENANT, day):
            totals[row.identity_id] += row.amount
    return dict(totals)


def emissions(graph: Graph) -> list[tuple[str, str, int, str | None]]:
    with ChargebackDatabase.open(graph.db_path) as db:
        return [
            (r.date.isoformat(), r.status, r.attempt_count, r.last_error)
            for r in emission_records(db, "confluent_cloud", TENANT, "files", PIPELINE)
        ]


@pytest.mark.parametrize("endpoint", ["/iam/v2/api-keys", "/iam/v2/service-accounts"])
def test_a_first_run_with_an_identity_endpoint_down_publishes_nothing_until_a_complete_gather(
    tmp_path: Path, endpoint: str
) -> None:
    emitters = [{"type": "csv", "name": "files", "params": {"output_dir": str(tmp_path / "csv")}}]
    # No retries: the endpoint is down for the whole run either way, retries only make the test slower.
    settings = {TENANT: {"emitters": emitters, "http": {"max_retries": 0}}}
    with (
        running_graph(tmp_path, days=3, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        day = graph.newest
        key = f"{day.isoformat()}|{TENANT}"
        output = tmp_path / "csv" / f"{TENANT}_{day.isoformat()}.csv"
        graph.sandboxes[TENANT].faults.set("server_error", times=None, path_prefix=endpoint, status=503)
        blocked = graph.run(TENANT, day, instance=instance, raise_on_error=False)
        on_incomplete = charged(graph, day)
        blocked_records = emissions(graph)
        written_while_blocked = output.exists()

        graph.sandboxes[TENANT].faults.clear()
        published = graph.run(TENANT, day, instance=instance)
        on_complete = charged(graph, day)

    assert not blocked.success
    (facts,) = blocked.asset_materializations_for_node("chargeback_facts")
    assert facts.partition == key, "the day is calculated, so its figures are visible"
    verdicts = {e.check_name: e for e in blocked.get_asset_check_evaluations()}
    check = verdicts["inventory_complete"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert endpoint in check.metadata["problems"].value and "503" in check.metadata["problems"].value
    assert all(e.passed for name, e in verdicts.items() if name == "chargeback_reconciles")
    assert blocked.asset_materializations_for_node("chargeback_csv") == []
    assert not written_while_blocked
    [(date_text, status, attempts, note)] = blocked_records
    assert (date_text, status, attempts) == (day.isoformat(), "blocked", 1)
    assert "inventory_complete" in note and endpoint in note
    failure = next(e for e in blocked.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert f"{TENANT} {day.isoformat()}: not published: calculated from an incomplete" in description
    assert on_incomplete != on_complete, "the incomplete inventory charged other identities"
    assert sum(on_incomplete.values()) == sum(on_complete.values())

    assert {e.check_name: e.passed for e in published.get_asset_check_evaluations()}["inventory_complete"]
    assert [m.partition for m in published.asset_materializations_for_node("chargeback_csv")] == [key]
    assert [record[:3] for record in emissions(graph)] == [(day.isoformat(), "emitted", 2)]
