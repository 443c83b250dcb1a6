"""A real PostgreSQL server (Debian package `postgresql`) in a temporary data directory, for tests.

`initdb` makes a fresh cluster with password authentication (scram-sha-256) for one superuser, and
`postgres` serves it on a free 127.0.0.1 port with its socket in the same temporary folder, so nothing of
the machine's own PostgreSQL (if any) is touched. Durability settings are off (`fsync`, synchronous
commit, full-page writes): a test server never survives a machine crash, and these make it several times
faster. The server is stopped by PID (SIGINT, PostgreSQL's fast shutdown) and its folder removed.

PostgreSQL refuses to run as root, so under root (CI, this sandbox) the cluster belongs to the `postgres`
user that the Debian package creates, in a folder under /tmp that user can reach (pytest's own temporary
folders are private to root).

Usage:

    @pytest.fixture(scope="session")
    def postgres():
        with running_postgres() as server:
            yield server

    def test_x(postgres):
        url = postgres.create_database("x")     # postgresql://chargeback:...@127.0.0.1:PORT/x
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chargeback_assets_tests.real_prometheus import free_port

MISSING = "PostgreSQL's server binaries (Debian package `postgresql`) are missing; `make test` installs them"
USER = "chargeback"
PASSWORD = "pg-test-secret-7f3a"
"""A recognisable password, so a test can assert that no message ever carries it."""


def server_binaries() -> Path | None:
    """The newest PostgreSQL server bin folder: Debian keeps initdb and postgres off PATH, per version."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("postgres"):
        return Path(initdb).parent
    return None


def require_postgres() -> Path:
    """The server bin folder, or fail the calling test with the reason: a skip would let CI pass."""
    binaries = server_binaries()
    if binaries is None:
        pytest.fail(MISSING)
    return binaries


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    binaries: Path

    def url(self, database: str, *, user: str = USER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database `name` and return its URL (the server's superuser owns it)."""
        subprocess.run(
            [str(self.binaries / "createdb"), "-h", self.host, "-p", str(self.port), "-U", USER, name],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        return self.url(name)


def _run_as() -> dict[str, str]:
    """subprocess keyword arguments that drop root to the `postgres` user, which PostgreSQL insists on."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster served on a free loopback port, stopped by PID and removed on exit."""
    binaries = require_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="chargeback-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres", "postgres")
        data = workdir / "data"
        password_file = workdir / "password"
        password_file.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--pwfile",
                str(password_file),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            **_run_as(),
        )
        port = free_port()
        log_path = workdir / "postgres.log"
        with log_path.open("w") as log:
            if os.geteuid() == 0:
                shutil.chown(log_path, "postgres", "postgres")
            process = subprocess.Popen(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(workdir),
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **_run_as(),
            )
            try:
                _wait_until_ready(binaries, port, process, log_path)
                yield PostgresServer("127.0.0.1", port, binaries)
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_ready(binaries: Path, port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 30.0
    while True:
        ready = subprocess.run(
            [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-q"],
            check=False,
        )
        if ready.returncode == 0:
            return
        if process.poll() is not None or time.monotonic() > deadline:
            log_tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"PostgreSQL did not become ready on port {port}:\n{log_tail}")
        time.sleep(0.1)
