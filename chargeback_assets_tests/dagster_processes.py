"""Real `dagster-webserver` and `dagster-daemon` processes for tests, each on its own DAGSTER_HOME.

The processes are what `make ui` runs: the repo's workspace.yaml, started from the repo root, with
DAGSTER_HOME and CHARGEBACK_CONFIG in their environment. Pitfalls from reference/dagster.md §4 and
reference/real-components.md §3 handled here:

- a fresh DAGSTER_HOME is migrated once in this process before any server starts, because processes that
  initialise one concurrently race on alembic ("Online migration expected to match one row");
- the servers are started as their own process group and stopped with SIGTERM by PID (`dagster dev` would
  ignore it; the standalone servers honour it and stop their code-server children), SIGKILL to the group
  only when SIGTERM is not honoured in time;
- the webserver is ready when `/server_info` answers, and it loads the workspace before it serves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import requests
import yaml

from chargeback_assets.config import CONFIG_ENV_VAR
from chargeback_assets.demo import REPO_DAGSTER_YAML
from chargeback_assets_tests.graph import Graph, running_graph
from chargeback_assets_tests.real_prometheus import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "workspace.yaml"
LOCATION = "chargeback_assets"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL = 4000


def repo_instance_settings() -> dict[str, Any]:
    """The instance settings every make target uses; tests start from these, not from a copy of them."""
    return yaml.safe_load(REPO_DAGSTER_YAML.read_text())


def prepare_dagster_home(directory: Path, settings: Mapping[str, Any] | None = None) -> Path:
    """Write `settings` (default: the repo's dagster.yaml) into `directory` and migrate its storage once."""
    directory.mkdir(parents=True, exist_ok=True)
    document = repo_instance_settings() if settings is None else dict(settings)
    (directory / "dagster.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    with open_instance(directory):
        pass
    return directory


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance the servers share, opened in this process (close it, or use it as a context manager).

    The repo's event log storage finds its folder through DAGSTER_HOME, as in every process `make` starts;
    it is `home` while the instance opens, so that this process writes where the servers do."""
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}):
        return dg.DagsterInstance.from_config(str(home))


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:] if self.log_path.exists() else ""

    def require_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} (pid {self.process.pid}) exited with {self.process.returncode}:\n"
                f"{self.log_tail()}"
            )


@dataclass
class DagsterServers:
    """The running processes of one DAGSTER_HOME; `graphql` talks to the webserver."""

    home: Path
    url: str
    processes: list[ServerProcess] = field(default_factory=list)

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer; GraphQL-level errors fail loudly with the query's first line."""
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors for {query.strip().splitlines()[0]!r}: {body['errors']}")
        return body["data"]

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} log -----\n{p.log_tail()}" for p in self.processes)

    def require_alive(self) -> None:
        for server in self.processes:
            server.require_alive()


def _start(name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> ServerProcess:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServerProcess(name, process, log_path)


def _stop(servers: list[ServerProcess]) -> None:
    """SIGTERM every process first so that they shut down in parallel, then wait for each."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"{server.name} (pid {server.process.pid}) ignored SIGTERM; sending SIGKILL to its group")
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=STOP_TIMEOUT_S)


def _wait_for_webserver(url: str, servers: list[ServerProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        for server in servers:
            server.require_alive()
        try:
            if requests.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"dagster-webserver did not answer {url}/server_info in {START_TIMEOUT_S:.0f} s"
            )
        time.sleep(0.2)


@contextmanager
def running_dagster(home: Path, config_path: Path, *, daemon: bool = False) -> Iterator[DagsterServers]:
    """dagster-webserver (and dagster-daemon) on a prepared `home`, serving the graph of `config_path`.

    The process logs are printed when the block fails, so pytest shows them with the failure.
    """
    env = {**os.environ, "DAGSTER_HOME": str(home), CONFIG_ENV_VAR: str(config_path)}
    url = f"http://127.0.0.1:{free_port()}"
    started: list[ServerProcess] = []
    try:
        started.append(
            _start(
                "dagster-webserver",
                ["dagster_webserver", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
                env,
                home / "webserver.log",
            )
        )
        if daemon:
            started.append(
                _start(
                    "dagster-daemon",
                    ["dagster._daemon", "run", "-w", str(WORKSPACE)],
                    env,
                    home / "daemon.log",
                )
            )
        servers = DagsterServers(home, url, started)
        _wait_for_webserver(url, started)
        require_location_loaded(servers)
        yield servers
    except BaseException:
        print(DagsterServers(home, url, started).logs())
        raise
    finally:
        _stop(started)


LOCATION_STATUS = """
query LocationStatus {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
}
"""


def location_entry(servers: DagsterServers) -> dict[str, Any]:
    """The workspace entry of the chargeback code location, as the webserver reports it."""
    entries = servers.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
    by_name = {entry["name"]: entry for entry in entries}
    if LOCATION not in by_name:
        raise RuntimeError(f"the webserver has no code location {LOCATION!r}, only {sorted(by_name)}")
    return by_name[LOCATION]


def require_location_loaded(servers: DagsterServers) -> None:
    """Fail at start, with Dagster's own error, when the definitions do not load (not later as a
    PipelineNotFoundError or an empty asset list)."""
    entry = location_entry(servers)
    loaded = entry["locationOrLoadError"] or {}
    if entry["loadStatus"] != "LOADED" or loaded.get("__typename") != "RepositoryLocation":
        raise RuntimeError(f"code location {LOCATION!r} did not load: {loaded.get('message', entry)}")


@dataclass
class ServedGraph:
    """A two-tenant graph with one materialized partition, served by a real webserver."""

    graph: Graph
    servers: DagsterServers
    materialized: str
    """The one partition key materialized before the webserver started, e.g. "2026-11-24|acme-prod"."""


@contextmanager
def served_graph(workdir: Path, days: int = 7) -> Iterator[ServedGraph]:
    """running_graph of `days` days, its newest acme-prod partition materialized, a webserver on top."""
    with ExitStack() as stack:
        graph = stack.enter_context(running_graph(workdir, days=days))
        home = prepare_dagster_home(workdir / "dagster_home")
        with open_instance(home) as instance:
            assert graph.run("acme-prod", graph.newest, instance=instance).success
        servers = stack.enter_context(running_dagster(home, graph.config_path))
        yield ServedGraph(graph, servers, f"{graph.newest.isoformat()}|acme-prod")
