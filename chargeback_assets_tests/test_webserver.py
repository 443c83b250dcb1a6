"""The real dagster-webserver over GraphQL: the code location loads, and the assets show their date × tenant
partitions with the partition status of the instance the webserver shares with our runs."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import ServedGraph, location_entry, served_graph

DAYS = 7
TENANTS = ["acme-prod", "acme-staging"]

pytestmark = pytest.mark.slow

ASSET_NODES = """
query AssetNodes {
  assetNodes {
    assetKey { path }
    isPartitioned
    partitionDefinition { type dimensionTypes { name type } }
    partitionKeysByDimension { name partitionKeys }
    partitionStats { numMaterialized numPartitions numFailed }
  }
}
"""

PARTITION_STATUS = """
query PartitionStatus($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey
            primaryDimEndKey
            secondaryDim {
              __typename
              ... on DefaultPartitionStatuses { materializedPartitions unmaterializedPartitions }
            }
          }
        }
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGraph]:
    with served_graph(tmp_path_factory.mktemp("webserver"), days=DAYS) as running:
        yield running


def test_the_code_location_is_loaded(served: ServedGraph) -> None:
    entry = location_entry(served.servers)
    assert entry["loadStatus"] == "LOADED"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry


def test_every_partitioned_asset_has_date_by_tenant_partitions_and_status(served: ServedGraph) -> None:
    nodes = {"/".join(n["assetKey"]["path"]): n for n in served.servers.graphql(ASSET_NODES)["assetNodes"]}
    assert set(PARTITIONED) <= set(nodes), sorted(nodes)
    # running_graph starts the tenants `days` days before today, and the last complete day is yesterday.
    first_day = served.graph.newest - timedelta(days=DAYS - 1)
    for name in PARTITIONED:
        node = nodes[name]
        assert node["isPartitioned"], name
        assert node["partitionDefinition"]["type"] == "MULTIPARTITIONED", name
        dimensions = {d["name"]: d["type"] for d in node["partitionDefinition"]["dimensionTypes"]}
        assert dimensions == {"date": "TIME_WINDOW", "tenant": "STATIC"}, name
        keys = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        assert keys["tenant"] == TENANTS, name
        assert len(keys["date"]) == DAYS, name
        assert (keys["date"][0], keys["date"][-1]) == (first_day.isoformat(), served.graph.newest.isoformat())
        stats = node["partitionStats"]
        assert stats == {"numMaterialized": 1, "numPartitions": DAYS * len(TENANTS), "numFailed": 0}, name


def test_partition_status_shows_the_materialized_partition(served: ServedGraph) -> None:
    answer = served.servers.graphql(PARTITION_STATUS, {"key": {"path": ["chargeback_facts"]}})
    statuses = answer["assetNodeOrError"]["assetPartitionStatuses"]
    assert statuses["__typename"] == "MultiPartitionStatuses"
    assert statuses["primaryDimensionName"] == "date"
    day, tenant = served.materialized.split("|")
    assert statuses["ranges"] == [
        {
            "primaryDimStartKey": day,
            "primaryDimEndKey": day,
            "secondaryDim": {
                "__typename": "DefaultPartitionStatuses",
                "materializedPartitions": [tenant],
                "unmaterializedPartitions": ["acme-staging"],
            },
        }
    ]
