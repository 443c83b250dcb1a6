"""chargeback_assets/resources.py: what the steps of one run share through the resource, and nothing more."""

from pathlib import Path

import dagster as dg

from chargeback_assets.resources import ChargebackResource
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.inventory import MadeIdentities
from chargeback_assets_tests.graph import running_graph

TENANT = "acme-prod"


def test_the_steps_of_a_run_share_the_identities_they_make_and_the_next_run_starts_afresh(
    tmp_path: Path,
) -> None:
    shared: list[MadeIdentities | None] = []

    @dg.op
    def read_inventory(chargeback: ChargebackResource) -> None:
        with chargeback.scope(TENANT) as scope:
            shared.append(scope.made_identities)

    @dg.job
    def two_steps() -> None:
        read_inventory.alias("resolve")()
        read_inventory.alias("allocate")()

    with running_graph(tmp_path, days=2) as graph, dg.instance_for_test() as instance:
        with graph.resource.scope(TENANT) as outside_a_run:
            assert outside_a_run.made_identities is None  # a sensor tick or a test keeps nothing
        for _ in range(2):
            result = two_steps.execute_in_process(instance=instance, resources={"chargeback": graph.resource})
            assert result.success
    first_run, second_run = shared[:2], shared[2:]
    assert isinstance(first_run[0], MadeIdentities)
    assert first_run[0] is first_run[1]
    assert second_run[0] is second_run[1]
    assert second_run[0] is not first_run[0]


def test_the_database_is_held_open_between_the_steps_of_a_run_and_closed_with_it(tmp_path: Path) -> None:
    """A step's close is not the last one, so the write-ahead log it wrote stays for the next step instead of
    being checkpointed into the file and deleted; the run's end checkpoints it."""
    logs_seen: list[int] = []

    @dg.op
    def write(chargeback: ChargebackResource) -> None:
        with chargeback.database() as db, db.transaction() as tx:
            tx.conn.execute("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)")
            tx.conn.execute("INSERT INTO scratch VALUES (1)")

    @dg.op(ins={"after": dg.In(dg.Nothing)})
    def look(chargeback: ChargebackResource) -> None:
        log = Path(f"{chargeback.config.storage.path}-wal")
        logs_seen.append(log.stat().st_size if log.exists() else 0)

    @dg.job
    def two_steps() -> None:
        look(write())

    with running_graph(tmp_path, days=2) as graph, dg.instance_for_test() as instance:
        result = two_steps.execute_in_process(instance=instance, resources={"chargeback": graph.resource})
        assert result.success
        assert logs_seen[0] > 0, "the first step's writes are still in the log"
        assert not Path(f"{graph.db_path}-wal").exists(), "the run's end checkpointed and removed it"
        with ChargebackDatabase.open(graph.db_path) as db:
            assert db.conn.execute("SELECT COUNT(*) FROM scratch").fetchone() == (1,)
