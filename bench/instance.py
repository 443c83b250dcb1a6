"""The Dagster instance the benchmarks run Dagster on: fresh each time, storing events as the repo's does.

Kept apart from harness.py, which every benchmark child and the summary process import, so that the
benchmarks without Dagster neither load it nor count it in their peak RSS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from chargeback_assets.demo import REPO_DAGSTER_YAML


@contextmanager
def repo_instance(workdir: str | Path) -> Iterator[dg.DagsterInstance]:
    """A fresh Dagster instance in `workdir` storing events as the repo's instance does
    (.dagster_home/dagster.yaml's event log, the part of the instance that a run's speed depends on);
    instance_for_test points DAGSTER_HOME, which that event log is configured by, at `workdir`."""
    event_log = yaml.safe_load(REPO_DAGSTER_YAML.read_text())["event_log_storage"]
    with dg.instance_for_test(temp_dir=str(workdir), overrides={"event_log_storage": event_log}) as instance:
        yield instance
