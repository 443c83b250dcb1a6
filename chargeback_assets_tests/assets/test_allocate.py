"""chargeback_facts in real runs against the sandbox: who pays, and how lines whose allocation fails end."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import UNALLOCATED, ChargebackRow
from chargeback_assets.storage.billing import allocation_attempts, billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.assets.test_graph import expected_bill
from chargeback_assets_tests.graph import Graph, running_graph

TENANT = "acme-prod"
CAPACITY = "CONNECT_CAPACITY"
CAPACITY_DOWN = {
    TENANT: {
        "allocator_overrides": {CAPACITY: "chargeback_assets_tests.engine.custom_callables:allocator_down"}
    }
}
BOOKED = (UNALLOCATED, "ALLOCATION_FAILED", "Failed after 3 attempts: RuntimeError: allocator down")


@contextmanager
def capacity_allocator_down(workdir: Path) -> Iterator[Graph]:
    """acme-prod with an allocator override for CONNECT_CAPACITY that always raises (retry limit 3)."""
    with running_graph(workdir, days=12, tenant_settings=CAPACITY_DOWN) as graph:
        yield graph


@dataclass(frozen=True)
class StoredDay:
    rows: list[ChargebackRow]
    billed: Decimal
    capacity_attempts: dict[str, int]
    """Allocation attempts of the day's CONNECT_CAPACITY lines, by connector."""

    @property
    def capacity(self) -> list[ChargebackRow]:
        return [row for row in self.rows if row.product_type == CAPACITY]


def stored(graph: Graph, day: date) -> StoredDay:
    db = ChargebackDatabase.open(graph.db_path)
    try:
        lines = billing_for_day(db, "confluent_cloud", TENANT, day)
        attempts = allocation_attempts(db, "confluent_cloud", TENANT, day)
        return StoredDay(
            chargeback_rows_for_day(db, "confluent_cloud", TENANT, day),
            sum((line.total_cost for line in lines), Decimal(0)),
            {line.resource_id: attempts[line_id(line)] for line in lines if line.product_type == CAPACITY},
        )
    finally:
        db.close()


def test_a_connector_on_a_key_made_after_the_billed_day_is_charged_to_the_key_owner(graph, instance) -> None:
    """The sandbox serves the connector's key as created at 00:00Z of the second day of a two-day run."""
    org = graph.sandboxes[TENANT].org
    keys = {key["id"]: key for key in org.objects["api_keys"]}
    connector = next(
        entry
        for by_cluster in org.connectors.values()
        for entries in by_cluster.values()
        for entry in entries.values()
        if entry["info"]["config"].get("kafka.auth.mode") == "KAFKA_API_KEY"
        and entry["info"]["config"]["kafka.api.key"] in keys
    )
    key = keys[connector["info"]["config"]["kafka.api.key"]]
    first, second = graph.newest - timedelta(days=1), graph.newest
    key["metadata"]["created_at"] = f"{second.isoformat()}T00:00:00.000000Z"

    assert graph.run(TENANT, first, second, instance=instance).success
    for day in (first, second):
        charged = [
            (row.identity_id, str(row.amount))
            for row in stored(graph, day).capacity
            if row.resource_id == connector["id"]["id"]
        ]
        assert charged == [(key["spec"]["owner"]["id"], "2.4000")], day


def test_one_run_books_every_failing_line_of_a_ten_day_backfill(tmp_path, instance) -> None:
    with capacity_allocator_down(tmp_path) as graph:
        first = graph.newest - timedelta(days=9)
        result = graph.run(TENANT, first, graph.newest, instance=instance)
        assert result.success
        failed_per_partition = {
            m.partition: m.metadata["lines_failed_after_retries"].value
            for m in result.asset_materializations_for_node("chargeback_facts")
        }
        for offset in range(10):
            day = first + timedelta(days=offset)
            facts = stored(graph, day)
            assert len(facts.capacity) == len(facts.capacity_attempts) > 0, day
            assert {(r.identity_id, r.allocation_method, r.allocation_detail) for r in facts.capacity} == {
                BOOKED
            }
            assert set(facts.capacity_attempts.values()) == {3}, day
            assert failed_per_partition[f"{day.isoformat()}|{TENANT}"] == len(facts.capacity)
            assert facts.billed == expected_bill(graph.sandboxes[TENANT].org, day)
            assert sum(row.amount for row in facts.rows) == facts.billed


def test_a_regathered_bill_gives_lines_that_used_up_their_attempts_the_whole_limit_again(
    tmp_path, instance
) -> None:
    """A day recomputed from a changed bill: its lines that failed three times before get three tries again,
    instead of being booked on their first failure (which would say "Failed after 4 attempts")."""
    with capacity_allocator_down(tmp_path) as graph:
        day = graph.newest
        assert graph.run(TENANT, day, instance=instance).success
        assert set(stored(graph, day).capacity_attempts.values()) == {3}
        graph.sandboxes[TENANT].revise_bill(day)
        assert graph.run(TENANT, day, instance=instance).success
        facts = stored(graph, day)
        assert facts.billed != expected_bill(graph.sandboxes[TENANT].org, day), (
            "the revised bill was gathered"
        )
        assert {(r.identity_id, r.allocation_method, r.allocation_detail) for r in facts.capacity} == {BOOKED}
        assert set(facts.capacity_attempts.values()) == {3}
        assert sum(row.amount for row in facts.rows) == facts.billed
