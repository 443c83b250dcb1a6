"""`make demo` and `make ui` as an operator meets them: every date partition of the demo is a day its
sandboxes bill, its console carries no Dagster Beta/Preview notices, its runs go to its own Dagster instance
(never the repo's `.dagster_home`), and `make ui` fails, saying why, when it cannot serve."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from chargeback_assets.config import load_config
from chargeback_assets.constants import TENANT_TAG
from chargeback_assets.demo import REPO_DAGSTER_YAML, TENANTS, demo_environment
from chargeback_assets.partitions import DATE, build_partitions
from chargeback_assets.runtime import build_runtime
from chargeback_assets_tests.dagster_processes import open_instance
from chargeback_assets_tests.focus_validator import combine, failed_rules
from chargeback_assets_tests.real_prometheus import free_port

DEMO = [sys.executable, "-m", "chargeback_assets.demo"]
START_TIMEOUT_S = 90.0


def test_every_date_partition_of_the_demo_is_a_day_its_sandboxes_bill(tmp_path: Path) -> None:
    days = 3
    with demo_environment(tmp_path, days) as (config_path, newest):
        config = load_config(config_path)
        first = newest - timedelta(days=days - 1)
        assert {name: t.start_date for name, t in config.tenants.items()} == dict.fromkeys(TENANTS, first)
        date_keys = build_partitions(config).get_partitions_def_for_dimension(DATE).get_partition_keys()
        assert date_keys == [(first + timedelta(days=n)).isoformat() for n in range(days)]
        for name, tenant in config.tenants.items():
            runtime = build_runtime(tenant)  # the tenant's real Costs API client, on its sandbox over HTTP
            try:
                for key in date_keys:
                    day = date.fromisoformat(key)
                    lines = runtime.cost_source.gather(day, day + timedelta(days=1))
                    assert lines, f"{name}: the sandbox bills nothing for partition {key}"
                    assert {line.timestamp.date() for line in lines} == {day}, name
            finally:
                runtime.close()


@pytest.mark.slow
def test_the_demo_prints_no_dagster_notices_and_keeps_its_runs_in_its_own_instance(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    repo_home = tmp_path / "repo_dagster_home"  # stands for the .dagster_home the Makefile exports
    repo_home.mkdir()
    shutil.copy(REPO_DAGSTER_YAML, repo_home / "dagster.yaml")
    result = subprocess.run(
        [*DEMO, "--days", "2", "--workdir", str(workdir)],
        env={**os.environ, "DAGSTER_HOME": str(repo_home)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "BetaWarning" not in output, output
    assert "PreviewWarning" not in output, output
    topics = output.split("topic attribution: Kafka cluster cost ", 1)[1].split("\n\n", 1)[0].splitlines()
    cost, attributed = topics[0].split(", attributed ")
    assert Decimal(cost) == Decimal(attributed.split(";")[0]) > 0, output
    amounts = [Decimal(line.split()[2]) for line in topics[1:]]  # cluster, topic, amount: costliest first
    assert len(amounts) > 2 and amounts == sorted(amounts, reverse=True), output
    for tenant in TENANTS:
        assert re.search(rf"\n{tenant}: 2 days, amounts in USD .* unattributed \d+\.\d{{4}} \(", output), (
            output
        )
    provisional = "settled: 0 days; provisional (younger than settle_days=3, may still be revised): 2 days"
    assert output.count(provisional) == len(TENANTS), output  # both days are younger than settle_days
    outputs = workdir / "outputs"
    assert list((outputs / "csv").glob("*_teams.csv")), "the demo's team tags give team rollups"
    focus = sorted((outputs / "focus").glob("focus_*.csv"))
    assert len(focus) == 2 * len(TENANTS), focus
    dataset = combine(focus, tmp_path / "focus.csv")
    assert failed_rules(dataset, tmp_path / "focus.xml") == {}
    home = workdir / "dagster_home"
    assert f"dagster instance: {home}" in output, output
    assert (home / "dagster.yaml").read_text() == REPO_DAGSTER_YAML.read_text()
    assert [p.name for p in repo_home.iterdir()] == ["dagster.yaml"]
    with open_instance(home) as instance:
        runs = instance.get_runs()
    assert sorted(run.tags[TENANT_TAG] for run in runs) == sorted(TENANTS)


@pytest.mark.slow
def test_ui_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*DEMO, "ui", "--port", str(port), "--days", "2", "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"port {port} on 127.0.0.1 is already in use" in output, output
    assert not workdir.exists(), "a sandbox, an instance or a server was started anyway"


@pytest.mark.slow
def test_ui_fails_naming_the_server_that_stopped_on_its_own(tmp_path: Path) -> None:
    port = free_port()
    console = tmp_path / "ui.out"
    with console.open("w") as out:
        ui = subprocess.Popen(
            [*DEMO, "ui", "--port", str(port), "--days", "2", "--workdir", str(tmp_path / "demo")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", ui, console)
        os.kill(child_pid(ui.pid, "dagster-daemon"), signal.SIGTERM)
        returncode = ui.wait(timeout=60)
    finally:
        if ui.poll() is None:
            ui.terminate()
            ui.wait(timeout=60)
    output = console.read_text()
    assert returncode != 0, output
    assert re.search(r"daemon exited on its own \(exit code -?\d+\)", output), output
    assert f"last lines of {tmp_path / 'demo' / 'logs' / 'daemon.log'}" in output, output


def wait_until_serving(url: str, ui: subprocess.Popen[bytes], console: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert ui.poll() is None, console.read_text()
        try:
            if requests.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"no webserver on {url}:\n{console.read_text()}"
        time.sleep(0.2)


def child_pid(parent: int, command: str) -> int:
    """The pid of `parent`'s child whose command line mentions `command`, from Linux's /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if ppid == parent and command.encode() in cmdline:
            return int(stat.parent.name)
    raise AssertionError(f"process {parent} has no child running {command}")
