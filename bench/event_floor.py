"""What Dagster's own event log costs a run: its stored events written again into a fresh instance.

A run stores events whatever its assets compute: one planned materialization and one materialization per
asset and partition (the SQLite event log takes no partition ranges in planned events), one evaluation per
check and partition, and a handful per step. Writing a finished run's events again as the run did, in the
batches Dagster handed them over (rebuilt from the log: the run's planned events together, each step's
materializations together, every other event alone), into a fresh instance of the same kind times that
part alone, with no asset work and no execution machinery in it: a floor under the run's wall time that
faster asset code cannot go below. Only fewer assets, checks or partitions per run would lower it.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from bench.harness import timed
from bench.instance import repo_instance


@dataclass(frozen=True, slots=True)
class EventFloor:
    events: int
    seconds: float
    by_kind: dict[str, int]

    def describe(self, run_seconds: float, what: str) -> str:
        kinds = dict(self.by_kind)
        named = [(kinds.pop(kind, 0), label) for kind, label in _NAMED_KINDS]
        parts = [f"{count} {label}" for count, label in named] + [f"{sum(kinds.values())} others"]
        each_ms = self.seconds / self.events * 1000
        return (
            f"Dagster event log floor of the {what}: its {self.events} stored events ({', '.join(parts)}) "
            f"written again into a fresh instance take {self.seconds:.2f} s ({each_ms:.1f} ms each), "
            f"{self.seconds / run_seconds:.0%} of its {run_seconds:.2f} s"
        )


_NAMED_KINDS = (
    ("ASSET_MATERIALIZATION_PLANNED", "planned materializations"),
    ("ASSET_MATERIALIZATION", "materializations"),
    ("ASSET_CHECK_EVALUATION", "check evaluations"),
)
"""The kinds a run stores per partition, named in the summary; the others are a handful per step."""


def event_floor(instance: dg.DagsterInstance, run_id: str) -> EventFloor:
    """Store `run_id`'s events again into a fresh test instance (the benchmark's own kind), timed."""
    records = instance.all_logs(run_id)
    kinds = Counter(
        record.dagster_event.event_type_value if record.dagster_event else "LOG" for record in records
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-event-floor-") as workdir,
        repo_instance(workdir) as fresh,
    ):
        seconds, _ = timed(lambda: _store_in_batches(fresh, records))
    return EventFloor(len(records), seconds, dict(kinds))


def _store_in_batches(instance: dg.DagsterInstance, records: Sequence[dg.EventLogEntry]) -> None:
    for batch in dagster_batches(records):
        instance.event_log_storage.store_event_batch(batch)


_BATCHED_KINDS = {
    "ASSET_MATERIALIZATION_PLANNED": "planned",
    "ASSET_CHECK_EVALUATION_PLANNED": "planned",
    "ASSET_MATERIALIZATION": "materialized",
}


def dagster_batches(records: Sequence[dg.EventLogEntry]) -> list[list[dg.EventLogEntry]]:
    """The batches in which Dagster handed a run's events to the storage, as its log shows them: the planned
    events at the run's start, and the materializations of one step output, each in a row in the log."""
    size = max(int(os.environ.get("DAGSTER_EVENT_BATCH_SIZE", "0")), 1)
    batches: list[list[dg.EventLogEntry]] = []
    previous = None
    for record in records:
        kind = record.dagster_event.event_type_value if record.dagster_event else None
        group = (_BATCHED_KINDS[kind], record.step_key) if kind in _BATCHED_KINDS else None
        if group is not None and group == previous and len(batches[-1]) < size:
            batches[-1].append(record)
        else:
            batches.append([record])
        previous = group
    return batches
