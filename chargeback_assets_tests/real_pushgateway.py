"""A real Pushgateway (Debian package `prometheus-pushgateway`) on a loopback port, for the emitter tests.

It keeps nothing on disk (`--persistence.file=`), so every start is empty. A test that needs a Pushgateway
that is down first and up later picks the port itself (`free_port()`) and starts it there when it wants it up.
With `basic_auth=(user, password)` it asks for those credentials on every request (its web config holds the
password's bcrypt hash).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from chargeback_assets_tests.real_prometheus import free_port, serving

MISSING = (
    "prometheus-pushgateway is not on PATH (Debian package `prometheus-pushgateway`; `make system-deps`)"
)


@contextmanager
def running_pushgateway(
    workdir: Path, port: int | None = None, basic_auth: tuple[str, str] | None = None
) -> Iterator[str]:
    """Start the Pushgateway on `port` (default: a free one), yield its URL, stop it by PID."""
    if not shutil.which("prometheus-pushgateway"):
        raise RuntimeError(MISSING)
    url = f"http://127.0.0.1:{port or free_port()}"
    command = [
        "prometheus-pushgateway",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--persistence.file=",
    ]
    if basic_auth:
        user, password = basic_auth
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # crypt: the one bcrypt at hand in 3.11
            import crypt

            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
        config = workdir / "web.yml"
        config.write_text(f"basic_auth_users:\n  {user}: '{hashed}'\n")
        command.append(f"--web.config.file={config}")
    with serving("pushgateway", command, url, workdir / "pushgateway.log", basic_auth):
        yield url


def pushed(url: str, metric: str, tenant_id: str, auth: tuple[str, str] | None = None) -> dict[str, str]:
    """identity_id -> value text of the metric in the tenant's group (job `chargeback`), from /metrics."""
    found = {}
    for line in requests.get(f"{url}/metrics", auth=auth, timeout=5).text.splitlines():
        if line.startswith(metric + "{") and f'tenant_id="{tenant_id}"' in line:
            labels, value = line.rsplit(" ", 1)
            assert 'job="chargeback"' in labels
            identity = labels.split('identity_id="', 1)[1].split('"', 1)[0]
            found[identity] = value
    return found
