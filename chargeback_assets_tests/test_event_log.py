"""chargeback_assets/event_log.py: the repo instance's SQLite event log, with engines kept between events."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import dagster._core.storage.event_log.sqlite.sqlite_event_log as dagster_sqlite_event_log
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sql import check_alembic_revision, get_alembic_config
from dagster._core.utils import make_new_run_id

from chargeback_assets.event_log import EVENT_BATCH_SIZE, KEPT_ENGINES, EngineKeepingSqliteEventLogStorage
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    open_instance,
    prepare_dagster_home,
    repo_instance_settings,
)


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"count": 3}, check_results=[dg.AssetCheckResult(check_name="positive", passed=True)]
    )


DAYS = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02", "2026-11-03"])


@dg.asset(partitions_def=DAYS)
def daily_numbers() -> None:
    pass


def materialize_days(instance: dg.DagsterInstance) -> str:
    """One run over all three partitions, as a single-run backfill of the range runs."""
    result = dg.materialize(
        [daily_numbers],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-03",
        },
    )
    assert result.success
    return result.run_id


def our_storage(instance: dg.DagsterInstance) -> EngineKeepingSqliteEventLogStorage:
    storage = instance.event_log_storage
    if not isinstance(storage, EngineKeepingSqliteEventLogStorage):  # wrapped by Dagster's composite
        storage = storage._storage.event_log_storage
    assert isinstance(storage, EngineKeepingSqliteEventLogStorage)
    return storage


def materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([numbers], instance=instance)
    assert result.success
    return result.run_id


def test_the_repo_instance_keeps_its_events_where_dagsters_default_does(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    default = yaml.safe_load(InstanceRef.config_defaults(str(home))["event_log_storage"].config_yaml)
    with open_instance(home) as instance:
        storage = our_storage(instance)
        run_id = materialize(instance)
        assert (home / "history" / "runs" / f"{run_id}.db").is_file()
        assert len(instance.all_logs(run_id)) > 0
    assert Path(storage._base_dir) == Path(default["base_dir"]) == home / "history" / "runs"


def test_the_webservers_log_watcher_is_woken_by_every_event_stored(tmp_path: Path) -> None:
    """The webserver shows a running run's log by watching the run's file (Dagster's watchdog, on another
    instance as in its own process): each event stored must change that file, though the event itself is in
    the write-ahead log beside it."""
    home = prepare_dagster_home(tmp_path / "home")
    with open_instance(home) as worker, open_instance(home) as webserver:
        run_id = make_new_run_id()
        first, *rest = [entry._replace(run_id=run_id) for entry in worker.all_logs(materialize(worker))]
        our_storage(worker).store_event(first)  # the run's file exists, as it does once the run is shown
        seen: queue.Queue[dg.EventLogEntry] = queue.Queue()

        def shown(entry: dg.EventLogEntry, cursor: str) -> None:
            seen.put(entry)

        our_storage(webserver).watch(run_id, None, shown)
        shown_so_far = []
        for entry in rest:
            our_storage(worker).store_event(entry)
            while entry not in shown_so_far:  # the watcher's first wake also reads what came before it
                try:
                    shown_so_far.append(seen.get(timeout=10))
                except queue.Empty:
                    pytest.fail(f"the watcher was not woken by {entry.dagster_event_type} in 10 s")
        our_storage(webserver).end_watch(run_id, shown)
    assert shown_so_far == [first, *rest]


def test_a_run_reads_back_the_same_in_both_storages_and_history_survives_the_switch(tmp_path: Path) -> None:
    settings = repo_instance_settings()
    ours = settings.pop("event_log_storage")
    home = prepare_dagster_home(tmp_path / "home", settings)  # Dagster's own SQLite event log
    with open_instance(home) as before:
        assert type(before.event_log_storage).__name__ == "SqliteEventLogStorage"
        old_run = materialize(before)
        old_events = [entry.dagster_event_type for entry in before.all_logs(old_run)]
    prepare_dagster_home(home, {**settings, "event_log_storage": ours})
    with open_instance(home) as instance:
        assert [entry.dagster_event_type for entry in instance.all_logs(old_run)] == old_events
        new_run = materialize(instance)
        assert [entry.dagster_event_type for entry in instance.all_logs(new_run)] == old_events
        materializations = instance.fetch_materializations(numbers.key, limit=10).records
        assert [record.run_id for record in materializations] == [new_run, old_run]
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(numbers.key, "positive")]
        )
        assert [execution.run_id for execution in check.values()] == [new_run]


def test_a_new_run_file_is_made_as_dagsters_own_storage_makes_it(tmp_path: Path) -> None:
    """The same tables, indexes and head revision (by Dagster's own check), in write-ahead-log mode."""

    def made_by(storage: SqliteEventLogStorage, run_id: str) -> tuple[Any, ...]:
        try:
            with storage.run_connection(run_id) as conn:
                revision = check_alembic_revision(get_alembic_config(dagster_sqlite_event_log.__file__), conn)
                (journal,) = conn.exec_driver_sql("PRAGMA journal_mode").fetchone()
                schema = sorted(
                    (kind, name, sql or "")
                    for kind, name, sql in conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master")
                )
        finally:
            storage.dispose()
        return revision, journal, schema

    ours = made_by(EngineKeepingSqliteEventLogStorage(str(tmp_path / "ours")), "a-run")
    dagsters = made_by(SqliteEventLogStorage(str(tmp_path / "dagsters")), "a-run")
    (stamped, head), journal, schema = ours
    assert stamped == head is not None and journal == "wal" and schema
    assert ours == dagsters


def test_engines_are_kept_per_file_up_to_the_limit(tmp_path: Path) -> None:
    storage = EngineKeepingSqliteEventLogStorage(str(tmp_path))
    try:
        first = storage._engine("run-0")
        assert storage._engine("run-0") is first
        for n in range(1, KEPT_ENGINES + 1):
            storage._engine(f"run-{n}")
        assert len(storage._engines) == KEPT_ENGINES
        assert storage._engine("run-0") is not first  # the least recently used went, and came back anew
    finally:
        storage.dispose()


def test_an_instance_without_dagster_home_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(Exception, match="DAGSTER_HOME"):
        dg.DagsterInstance.from_config(str(home))


def test_the_storage_turns_on_dagsters_event_batches_unless_they_are_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    EngineKeepingSqliteEventLogStorage(str(tmp_path / "a")).dispose()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(EVENT_BATCH_SIZE)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "7")
    EngineKeepingSqliteEventLogStorage(str(tmp_path / "b")).dispose()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "7"


def test_a_range_run_stores_its_partitions_materializations_as_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # open_instance restores the environment it patched, so the batch size the storage set goes with it:
    # set here as it stays set in a process that opens the instance.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
    with open_instance(prepare_dagster_home(tmp_path / "home")) as instance:
        storage = our_storage(instance)
        with mock.patch.object(storage, "store_event_batch", wraps=storage.store_event_batch) as batches:
            run_id = materialize_days(instance)
        kinds = [[event.dagster_event_type for event in call.args[0]] for call in batches.call_args_list]
        materialized = [
            record.partition_key
            for record in instance.fetch_materializations(daily_numbers.key, limit=10).records
        ]
        assert [dg.DagsterEventType.ASSET_MATERIALIZATION] * 3 in kinds
        assert [dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED] * 3 in kinds
        assert sorted(materialized) == ["2026-11-01", "2026-11-02", "2026-11-03"]
        assert len(instance.all_logs(run_id)) == sum(map(len, kinds))  # single events are batches of one


def test_a_failed_batch_leaves_nothing_and_stores_whole_when_tried_again(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as source:
        run_id = materialize_days(source)
        events = source.all_logs(run_id)
    last_materialization = max(
        i for i, e in enumerate(events) if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    store = SqliteEventLogStorage.store_event

    def fail_at_the_last_materialization(storage: SqliteEventLogStorage, event: dg.EventLogEntry) -> None:
        if event is events[last_materialization]:
            raise OSError("disk full")
        store(storage, event)

    storage = EngineKeepingSqliteEventLogStorage(str(tmp_path / "home"))
    try:
        with (
            mock.patch.object(SqliteEventLogStorage, "store_event", fail_at_the_last_materialization),
            pytest.raises(OSError, match="disk full"),
        ):
            storage.store_event_batch(events)
        assert storage.get_logs_for_run(run_id) == []
        assert storage.get_asset_records([daily_numbers.key]) == []
        storage.store_event_batch(events)
        assert len(storage.get_logs_for_run(run_id)) == len(events)
        assert storage.get_materialized_partitions(daily_numbers.key) == set(DAYS.get_partition_keys())
    finally:
        storage.dispose()


def open_files_under(folder: Path) -> list[str]:
    """This process's open files in `folder`, deleted ones included (Linux: /proc/self/fd)."""
    targets = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
    return [target for target in targets if target.startswith(str(folder))]


def test_a_wipe_closes_the_kept_connections_to_the_run_files_it_deletes(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    with open_instance(home) as instance:
        run_id = materialize(instance)
        runs = home / "history" / "runs"
        assert any(run_id in target for target in open_files_under(runs))  # kept open between events
        instance.wipe()
        assert not list(runs.glob(f"{run_id}.db*"))
        assert not any(run_id in target for target in open_files_under(runs))
        again = materialize(instance)
        materializations = instance.fetch_materializations(numbers.key, limit=5).records
        assert [record.run_id for record in materializations] == [again]


DIE_AFTER_A_RUN = """
import os, signal, sys
from pathlib import Path
from chargeback_assets_tests.dagster_processes import open_instance
from chargeback_assets_tests.test_event_log import materialize
instance = open_instance(Path(sys.argv[1]))
run_id = materialize(instance)
print(run_id, len(instance.all_logs(run_id)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the events are in the write-ahead logs only
"""


def test_every_event_committed_is_kept_when_the_process_dies_before_closing_its_files(tmp_path: Path) -> None:
    """Commits do not wait for the disk (`synchronous = NORMAL`); what they wrote must outlive the process."""
    home = prepare_dagster_home(tmp_path / "home")
    died = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_A_RUN, str(home)],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    run_id, stored = died.stdout.split()
    assert list((home / "history" / "runs").glob(f"{run_id}.db-wal")), "killed before any checkpoint"
    with open_instance(home) as instance:
        events = instance.all_logs(run_id)
        assert len(events) == int(stored) > 0
        assert events[-1].dagster_event_type == dg.DagsterEventType.RUN_SUCCESS
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def test_commits_go_to_the_write_ahead_log_without_waiting_for_the_disk(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    with open_instance(home) as instance:
        storage = our_storage(instance)
        run_id = materialize(instance)
        for shard in (INDEX_SHARD_NAME, run_id):
            with storage._engine(shard).connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").fetchone() == ("wal",), shard
                assert conn.exec_driver_sql("PRAGMA synchronous").fetchone() == (1,), shard  # NORMAL


def test_the_index_schema_is_read_until_it_answers_yes_and_again_after_a_wipe(tmp_path: Path) -> None:
    """Dagster asks whether the index has a column or a completed data migration for every asset event
    stored and every asset read; a yes stays (both are only ever added), a no is asked again."""
    asked: list[str] = []
    columns = SqlEventLogStorage._has_asset_key_col_on_connection
    migrations = SqlEventLogStorage.has_secondary_index

    def column_asked(storage: SqlEventLogStorage, conn: Any, name: str) -> bool:
        asked.append(name)
        return columns(storage, conn, name)

    def migration_asked(storage: SqlEventLogStorage, name: str) -> bool:
        asked.append(name)
        return migrations(storage, name)

    home = prepare_dagster_home(tmp_path / "home")
    with (
        mock.patch.object(SqlEventLogStorage, "_has_asset_key_col_on_connection", column_asked),
        mock.patch.object(SqlEventLogStorage, "has_secondary_index", migration_asked),
        open_instance(home) as instance,
    ):
        storage = our_storage(instance)
        materialize(instance)
        assert storage.has_asset_key_index_cols() and storage.has_secondary_index(ASSET_KEY_INDEX_COLS)
        first = list(asked)
        assert "last_materialization_timestamp" in first and ASSET_KEY_INDEX_COLS in first
        materialize(instance)
        assert storage.get_asset_records([numbers.key])
        assert asked == first, "a yes is not asked again"
        assert not storage.has_asset_key_col("no_such_column")
        assert not storage.has_asset_key_col("no_such_column")
        assert asked.count("no_such_column") == 2, "a no is"
        instance.wipe()
        storage.has_secondary_index(ASSET_KEY_INDEX_COLS)
        assert asked.count(ASSET_KEY_INDEX_COLS) == first.count(ASSET_KEY_INDEX_COLS) + 1, "nor after a wipe"
