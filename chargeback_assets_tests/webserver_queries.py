"""What a user of the Dagster UI sees, asked of the real webserver over GraphQL: backfills and their runs,
each partition's latest materialization metadata, and each check's status per partition."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from chargeback_assets.constants import TENANT_TAG
from chargeback_assets.definitions import CHARGEBACK_JOB
from chargeback_assets_tests.dagster_processes import LOCATION, DagsterServers
from chargeback_assets_tests.graph import QUIET

BACKFILL_TIMEOUT_S = 240.0
POLL_S = 1.0

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 100) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""

SENSOR_TICKS = """
query SensorTicks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 1) { status } } }
    ... on PythonError { message }
  }
}
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $partitions, limit: 1000) {
        partition
        runId
        timestamp
        metadataEntries {
          label
          __typename
          ... on FloatMetadataEntry { floatValue }
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on BoolMetadataEntry { boolValue }
          ... on PathMetadataEntry { path }
          ... on MarkdownMetadataEntry { mdStr }
          ... on JsonMetadataEntry { jsonString }
          ... on TableMetadataEntry { table { records schema { columns { name type } } } }
        }
      }
    }
  }
}
"""

CHECK_STATUSES = """
query Checks($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            blocking
            partitionStatuses {
              __typename
              ... on AssetCheckMultiPartitionStatuses {
                ranges {
                  primaryDimStartKey
                  primaryDimEndKey
                  secondaryDim {
                    ... on AssetCheckDefaultPartitionStatuses {
                      succeededPartitions failedPartitions skippedPartitions
                      inProgressPartitions executionFailedPartitions
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""

PARTITION_KEYS = """
query Keys($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } }
  }
}
"""


def launch_backfill(servers: DagsterServers, assets: Sequence[str], partitions: Sequence[str]) -> str:
    answer = servers.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": [name]} for name in assets],
                "partitionNames": list(partitions),
            }
        },
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def wait_for_backfill(servers: DagsterServers, backfill_id: str) -> list[dict[str, Any]]:
    """The backfill's runs once it is over (the daemon submits and the queue runs them); fails on timeout."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while True:
        servers.require_alive()
        answer = servers.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        assert answer["__typename"] == "PartitionBackfill", answer
        runs = answer["runs"]
        finished = all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs)
        if answer["status"] not in ("REQUESTED",) and runs and finished:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"backfill {backfill_id} not over in {BACKFILL_TIMEOUT_S:.0f} s: {answer}\n{servers.logs()}"
            )
        time.sleep(POLL_S)


def launch_run(
    servers: DagsterServers,
    assets: Sequence[str],
    checks: Sequence[tuple[str, str]],
    first_key: str,
    last_key: str,
) -> str:
    """One run over a partition range, of some assets and checks: what the UI's Materialize dialog sends."""
    answer = servers.graphql(
        LAUNCH_RUN,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": [name]} for name in assets],
                    "assetCheckSelection": [
                        {"assetKey": {"path": [asset]}, "name": name} for asset, name in checks
                    ],
                },
                "executionMetadata": {
                    "tags": [
                        {"key": "dagster/asset_partition_range_start", "value": first_key},
                        {"key": "dagster/asset_partition_range_end", "value": last_key},
                    ]
                },
                "mode": "default",
            }
        },
    )["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def wait_for_run(servers: DagsterServers, run_id: str) -> str:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while True:
        servers.require_alive()
        status = servers.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {status} after {BACKFILL_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def wait_for_sensor_tick(servers: DagsterServers, sensor: str) -> None:
    """Until the daemon has evaluated `sensor` once. A run-status sensor starts watching at its first tick,
    so a run that ends before then is never seen by it."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": sensor}
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while True:
        servers.require_alive()
        answer = servers.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]
        assert answer["__typename"] == "Sensor", answer
        if answer["sensorState"]["ticks"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"sensor {sensor} not evaluated in {BACKFILL_TIMEOUT_S:.0f} s\n{servers.logs()}"
            )
        time.sleep(POLL_S)


def entry_value(entry: dict[str, Any]) -> Any:
    """A GraphQL metadata entry's value, whatever its type."""
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    for field in ("floatValue", "intValue", "text", "boolValue", "path", "mdStr", "table"):
        if field in entry:
            return entry[field]
    raise AssertionError(f"metadata entry of unexpected type: {entry}")


def latest_metadata(servers: DagsterServers, asset: str, partitions: Sequence[str]) -> dict[str, dict]:
    """partition -> {label: (type name, value)} of that partition's newest materialization."""
    events = servers.graphql(MATERIALIZATIONS, {"key": {"path": [asset]}, "partitions": list(partitions)})
    newest: dict[str, dict[str, Any]] = {}
    for event in events["assetOrError"]["assetMaterializations"]:
        current = newest.get(event["partition"])
        if current is None or int(event["timestamp"]) > int(current["timestamp"]):
            newest[event["partition"]] = event
    return {
        partition: {
            "runId": event["runId"],
            "entries": {e["label"]: (e["__typename"], entry_value(e)) for e in event["metadataEntries"]},
        }
        for partition, event in newest.items()
    }


def check_statuses(servers: DagsterServers, asset: str) -> dict[str, dict[str, str]]:
    """check name -> {partition key: SUCCEEDED | FAILED | SKIPPED | ...}, as the partitions view shows."""
    node = servers.graphql(CHECK_STATUSES, {"key": {"path": [asset]}})["assetNodeOrError"]
    statuses: dict[str, dict[str, str]] = {}
    for check in node["assetChecksOrError"]["checks"]:
        by_key: dict[str, str] = {}
        partition_statuses = check["partitionStatuses"] or {"ranges": []}
        for span in partition_statuses["ranges"]:
            dates = _dates_between(servers, asset, span["primaryDimStartKey"], span["primaryDimEndKey"])
            for field, status in (
                ("succeededPartitions", "SUCCEEDED"),
                ("failedPartitions", "FAILED"),
                ("skippedPartitions", "SKIPPED"),
                ("inProgressPartitions", "IN_PROGRESS"),
                ("executionFailedPartitions", "EXECUTION_FAILED"),
            ):
                for tenant in span["secondaryDim"][field]:
                    by_key.update({f"{day}|{tenant}": status for day in dates})
        statuses[check["name"]] = by_key
    return statuses


def _dates_between(servers: DagsterServers, asset: str, first: str, last: str) -> list[str]:
    dimensions = servers.graphql(PARTITION_KEYS, {"key": {"path": [asset]}})["assetNodeOrError"]
    dates = next(d["partitionKeys"] for d in dimensions["partitionKeysByDimension"] if d["name"] == "date")
    return dates[dates.index(first) : dates.index(last) + 1]


def launch_partition(servers: DagsterServers, tenant: str, day: date) -> str:
    """Submit one partition of the chargeback job through the webserver, tagged as our launches are."""
    partition = f"{day.isoformat()}|{tenant}"
    tags = {
        "dagster/partition": partition,
        "dagster/partition/date": day.isoformat(),
        "dagster/partition/tenant": tenant,
        TENANT_TAG: tenant,
    }
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": CHARGEBACK_JOB,
        },
        "runConfigData": QUIET,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        "mode": "default",
    }
    answer = servers.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    assert answer["run"]["status"] == "QUEUED", answer
    return answer["run"]["runId"]
