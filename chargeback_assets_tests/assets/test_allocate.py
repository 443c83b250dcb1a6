"""chargeback_facts in real runs against the sandbox: who pays."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import ChargebackRow
from chargeback_assets.storage.billing import allocation_attempts, billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.graph import Graph

TENANT = "acme-prod"
CAPACITY = "CONNECT_CAPACITY"


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
