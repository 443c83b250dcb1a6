"""Shared sandbox fixtures: one small organization for the session, a fresh server per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests

from chargeback_assets.sandbox import Organization, SandboxServer, generate_org

END = date(2026, 7, 1)
AUTH = ("sandbox-key", "sandbox-secret")


@pytest.fixture(scope="session")
def small_org() -> Organization:
    return generate_org("small", seed=7, end_date=END, days=35)


@pytest.fixture
def server(small_org: Organization) -> Iterator[SandboxServer]:
    with SandboxServer(small_org) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = AUTH
        yield session
