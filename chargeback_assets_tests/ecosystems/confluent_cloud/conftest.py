"""Confluent-shaped replies for the fake HTTP server, built from the recorded examples in
shared/contracts/ccloud/examples/, and a client factory pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest

from chargeback_assets.ecosystems.confluent_cloud.client import CCloudClient
from chargeback_assets.ecosystems.confluent_cloud.settings import HttpSettings
from chargeback_assets.validation import Secret
from chargeback_assets_tests.contracts import EXAMPLES
from chargeback_assets_tests.ecosystems.http_fake import FakeHttpServer, FakeTime, Reply, Request

API_KEY = "TESTKEY7FJIYKQ4S"
API_SECRET = "s3cr3t-Zq9vW2xY8uT5"


def example(relative: str) -> Any:
    """A recorded Confluent response body (terraform-provider fixtures or authored billing pages)."""
    return json.loads((EXAMPLES / relative).read_text())


def tf(relative: str) -> Any:
    return example(f"terraform-provider-confluent/{relative}")


def paged(pages: Sequence[Sequence[Any]], path: str, keep: Sequence[str] = ()) -> Callable[[Request], Reply]:
    """A list endpoint serving `pages` through opaque page tokens; `next` carries the filters in `keep`."""

    def respond(request: Request) -> Reply:
        token = request.query.get("page_token")
        index = int(token.removeprefix("tok-")) if token else 0
        metadata: dict[str, Any] = {}
        if index + 1 < len(pages):
            filters = {k: request.query[k] for k in keep if k in request.query}
            query = urlencode({"page_token": f"tok-{index + 1}", **filters})
            metadata["next"] = f"https://api.confluent.cloud{path}?{query}"
        return Reply(
            body={"api_version": "v2", "kind": "List", "metadata": metadata, "data": list(pages[index])}
        )

    return respond


def listing(items: Sequence[Any]) -> Reply:
    return Reply(body={"api_version": "v2", "kind": "List", "metadata": {}, "data": list(items)})


@pytest.fixture
def fake() -> Iterator[FakeHttpServer]:
    server = FakeHttpServer()
    yield server
    server.stop()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake: FakeHttpServer, fake_time: FakeTime) -> Iterator[Callable[..., CCloudClient]]:
    clients: list[CCloudClient] = []

    def build(**http: Any) -> CCloudClient:
        settings = HttpSettings(
            **{"base_url": fake.url, "timeout_seconds": 2.0, "min_interval_seconds": 0.0, **http}
        )
        client = CCloudClient(settings, API_KEY, Secret(API_SECRET), "acme", budget=fake_time.budget())
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
