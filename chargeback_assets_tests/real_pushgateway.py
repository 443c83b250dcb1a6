"""A real Pushgateway (Debian package `prometheus-pushgateway`) on a loopback port, for the emitter tests.

It keeps nothing on disk (`--persistence.file=`), so every start is empty. A test that needs a Pushgateway
that is down first and up later picks the port itself (`free_port()`) and starts it there when it wants it up.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from chargeback_assets_tests.real_prometheus import free_port, serving

MISSING = (
    "prometheus-pushgateway is not on PATH (Debian package `prometheus-pushgateway`; `make system-deps`)"
)


@contextmanager
def running_pushgateway(workdir: Path, port: int | None = None) -> Iterator[str]:
    """Start the Pushgateway on `port` (default: a free one), yield its URL, stop it by PID."""
    if not shutil.which("prometheus-pushgateway"):
        raise RuntimeError(MISSING)
    url = f"http://127.0.0.1:{port or free_port()}"
    command = [
        "prometheus-pushgateway",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--persistence.file=",
    ]
    with serving("pushgateway", command, url, workdir / "pushgateway.log"):
        yield url


def pushed(url: str, metric: str, tenant_id: str) -> dict[str, str]:
    """identity_id -> value text of the metric in the tenant's group (job `chargeback`), from /metrics."""
    found = {}
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(metric + "{") and f'tenant_id="{tenant_id}"' in line:
            labels, value = line.rsplit(" ", 1)
            assert 'job="chargeback"' in labels
            identity = labels.split('identity_id="', 1)[1].split('"', 1)[0]
            found[identity] = value
    return found
