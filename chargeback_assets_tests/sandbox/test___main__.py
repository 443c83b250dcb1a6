from __future__ import annotations

import json
import signal
import subprocess
import sys

import requests

from chargeback_assets.sandbox.snapshot import FORMAT

from .conftest import AUTH


def test_cli_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "chargeback_assets.sandbox", "--size", "small", "--port", "0", "--days", "3",
         "--end-date", "2026-06-16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = process.stdout.readline().strip()
        assert process.stdout.readline().strip() == "ready"
        assert requests.get(url + "/-/ready", timeout=10).status_code == 200
        envs = requests.get(url + "/org/v2/environments", auth=AUTH, timeout=10).json()
        assert len(envs["data"]) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read().strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_dump_writes_a_snapshot_and_exits(tmp_path):
    target = tmp_path / "org.json"
    done = subprocess.run(
        [sys.executable, "-m", "chargeback_assets.sandbox", "--days", "2", "--end-date", "2026-06-16",
         "--dump", str(target)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text())["format"] == FORMAT


def test_cli_reports_a_bad_snapshot(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", "chargeback_assets.sandbox", "--snapshot", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not a sandbox snapshot" in done.stderr
