"""A real Prometheus (Debian package) loaded with synthetic history, for tests that must hit the real thing.

History is written as OpenMetrics, turned into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`
*before* the server starts (blocks copied into a running server stay invisible for a minute), and served on
a free 127.0.0.1 port with no scrape targets. Pitfalls from reference/real-components.md §1 handled here:
`# EOF` is mandatory, timestamps are seconds (milliseconds are silently accepted and land in year 58863),
metrics are declared `gauge` with bare names (a `counter` would be stored as `<name>_total`), and retention
is 100 years because retention counts from the newest block, not from today.

Usage in a test module:

    @pytest.fixture(scope="module")
    def prometheus(tmp_path_factory):
        with running_prometheus(tmp_path_factory.mktemp("prom"), samples) as url:
            yield url
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

MISSING = "`prometheus` and `promtool` are not on PATH (Debian package `prometheus`; `make test` installs it)"


@dataclass(frozen=True, slots=True)
class Sample:
    metric: str
    timestamp: float
    """Epoch seconds."""
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


def require_prometheus() -> None:
    """Fail the calling test, with the reason, when the Prometheus binaries are missing: a skip would let
    CI pass without the real-component tests."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        pytest.fail(MISSING)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics_text(samples: Iterable[Sample]) -> str:
    """OpenMetrics text of `samples`: every metric a gauge, ending with the mandatory `# EOF`."""
    by_metric: dict[str, list[Sample]] = {}
    for sample in samples:
        by_metric.setdefault(sample.metric, []).append(sample)
    lines = []
    for metric in sorted(by_metric):
        lines.append(f"# TYPE {metric} gauge")
        for s in sorted(by_metric[metric], key=lambda s: (sorted(s.labels.items()), s.timestamp)):
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
            lines.append(f"{metric}{{{labels}}} {s.value!r} {s.timestamp!r}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    name: str, command: list[str], url: str, log_path: Path, auth: tuple[str, str] | None = None
) -> Iterator[str]:
    """Run a Prometheus-family server (`/-/ready` when up, asked with `auth` if it wants basic auth), yield
    `url` once it is ready, stop it by PID."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30.0
            while True:
                try:
                    if requests.get(f"{url}/-/ready", auth=auth, timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} did not become ready at {url}:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextmanager
def running_prometheus(workdir: Path, samples: Iterable[Sample]) -> Iterator[str]:
    """Build blocks from `samples`, start Prometheus on a free port, yield its URL, stop it by PID."""
    source = workdir / "history.om"
    source.write_text(openmetrics_text(samples))
    with backfilled_prometheus(workdir, source) as url:
        yield url


@contextmanager
def backfilled_prometheus(workdir: Path, *openmetrics: Path) -> Iterator[str]:
    """Blocks built from OpenMetrics files (one tenant's each, say) by promtool, served by Prometheus on a
    free loopback port."""
    require_prometheus()
    data = workdir / "data"
    for source in openmetrics:
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                "--max-block-duration=24h",
                str(source),
                str(data),
            ],
            check=True,
            capture_output=True,
        )
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--storage.tsdb.retention.time=100y",
    ]
    with serving("prometheus", command, url, workdir / "prometheus.log"):
        yield url
