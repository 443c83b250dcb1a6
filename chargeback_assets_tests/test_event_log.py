"""chargeback_assets/event_log.py: the repo instance's SQLite event log, with engines kept between events."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from chargeback_assets.event_log import KEPT_ENGINES, EngineKeepingSqliteEventLogStorage
from chargeback_assets_tests.dagster_processes import (
    open_instance,
    prepare_dagster_home,
    repo_instance_settings,
)


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"count": 3}, check_results=[dg.AssetCheckResult(check_name="positive", passed=True)]
    )


def materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([numbers], instance=instance)
    assert result.success
    return result.run_id


def test_the_repo_instance_keeps_its_events_where_dagsters_default_does(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "home")
    default = yaml.safe_load(InstanceRef.config_defaults(str(home))["event_log_storage"].config_yaml)
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        if not isinstance(storage, EngineKeepingSqliteEventLogStorage):  # wrapped by Dagster's composite
            storage = storage._storage.event_log_storage
        assert isinstance(storage, EngineKeepingSqliteEventLogStorage)
        run_id = materialize(instance)
        # While the instance is open: each transaction closed its connection, so the write-ahead log went
        # into the run's own file (the file the webserver's log watcher waits on) and nothing stays open.
        runs = home / "history" / "runs"
        assert (runs / f"{run_id}.db").exists()
        assert not (runs / f"{run_id}.db-wal").exists()
        assert not (runs / "index.db-wal").exists()
    assert Path(storage._base_dir) == Path(default["base_dir"]) == runs


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
