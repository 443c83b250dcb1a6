"""The PostgreSQL test server itself: it serves a fresh database and really checks passwords."""

from __future__ import annotations

import os
import subprocess

import pytest

from chargeback_assets_tests.real_postgres import PASSWORD, USER, running_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _psql(server, database: str, sql: str, password: str) -> subprocess.CompletedProcess:
    connection = ["-h", server.host, "-p", str(server.port), "-U", USER, "-d", database]
    return subprocess.run(
        [str(server.binaries / "psql"), *connection, "-tAc", sql],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": password},
        check=False,
    )


def test_the_server_serves_a_created_database_and_refuses_a_wrong_password():
    with running_postgres() as server:
        url = server.create_database("fixture_check")
        assert url.endswith(f"@127.0.0.1:{server.port}/fixture_check")
        settings = "select current_database(), current_setting('fsync')"
        answer = _psql(server, "fixture_check", settings, PASSWORD)
        assert answer.stdout.strip() == "fixture_check|off", answer.stderr
        refused = _psql(server, "fixture_check", "select 1", "not-the-password")
        assert refused.returncode != 0
        assert "password authentication failed" in refused.stderr
