from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets_tests.graph import Graph, running_graph


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[Graph]:
    with running_graph(tmp_path) as running:
        yield running


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance
