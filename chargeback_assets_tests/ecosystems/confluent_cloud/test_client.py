from __future__ import annotations

import base64
import itertools
import logging
import socket

import pytest

from chargeback_assets.ecosystems.confluent_cloud.client import CCloudApiError, CCloudClient, page_size_for
from chargeback_assets.ecosystems.confluent_cloud.settings import HttpSettings
from chargeback_assets.validation import Secret
from chargeback_assets_tests.ecosystems.confluent_cloud.conftest import (
    API_KEY,
    API_SECRET,
    Reply,
    listing,
    paged,
    tf,
)

OK_ENVS = listing([{"id": "env-1"}])
TOO_MANY = Reply(429, {"errors": [{"status": "429", "detail": "slow down"}]})


def test_pages_are_followed_with_filters_kept(fake, make_client):
    page1, page2 = tf("kafka/read_kafkas_page_1.json"), tf("kafka/read_kafkas_page_2.json")
    token = "dyJpZCI6InNhLTd5OXbyby"

    def respond(request):
        return Reply(body=page2 if request.query.get("page_token") == token else page1)

    fake.route("/cmk/v2/clusters", respond)
    clusters = list(make_client().list("/cmk/v2/clusters", {"environment": "env-1jrymj"}))

    assert [c["id"] for c in clusters] == ["lkc-19ynpv", "lkc-29ynpv"]
    hits = fake.hits("/cmk/v2/clusters")
    assert [h.query for h in hits] == [
        {"environment": "env-1jrymj", "page_size": "99"},
        {"environment": "env-1jrymj", "page_size": "99", "page_token": token},
    ]


def test_three_pages_and_null_data(fake, make_client):
    fake.route(
        "/iam/v2/service-accounts", paged([[{"id": "sa-1"}], [], [{"id": "sa-2"}, {"id": "sa-3"}]], "/x")
    )
    fake.route("/iam/v2/users", Reply(body={"data": None, "metadata": {}}))
    client = make_client()
    assert [i["id"] for i in client.list("/iam/v2/service-accounts")] == ["sa-1", "sa-2", "sa-3"]
    assert [h.query.get("page_token") for h in fake.hits("/iam/v2/service-accounts")] == [
        None,
        "tok-1",
        "tok-2",
    ]
    assert list(client.list("/iam/v2/users")) == []


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/org/v2/environments", 99),
        ("/iam/v2/api-keys", 100),
        ("/srcm/v3/clusters", 50),
        ("/fcpm/v2/compute-pools", 50),
        ("/sql/v1/organizations/o/environments/env-1/statements", 50),
        ("/billing/v1/costs", 2000),
    ],
)
def test_page_size_per_endpoint(fake, make_client, path, size):
    fake.route(path, OK_ENVS)
    assert page_size_for(path) == size
    list(make_client().list(path))
    assert fake.hits(path)[0].query["page_size"] == str(size)


def test_explicit_page_size_wins(fake, make_client):
    fake.route("/org/v2/environments", OK_ENVS)
    list(make_client().list("/org/v2/environments", page_size=7))
    assert fake.hits("/org/v2/environments")[0].query["page_size"] == "7"


def test_basic_auth_header(fake, make_client):
    fake.route("/org/v2/environments", OK_ENVS)
    list(make_client().list("/org/v2/environments"))
    header = fake.hits("/org/v2/environments")[0].headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"{API_KEY}:{API_SECRET}"


def test_429_with_retry_after_then_success(fake, make_client, fake_time):
    fake.route("/org/v2/environments", [Reply(429, {}, {"Retry-After": "0.05"}), OK_ENVS])
    assert [e["id"] for e in make_client().list("/org/v2/environments")] == ["env-1"]
    assert len(fake.hits("/org/v2/environments")) == 2
    assert fake_time.waits == [0.05], "Retry-After is taken exactly"


def test_429_six_times_exhausts_five_retries(fake, make_client, fake_time):
    fake.route("/org/v2/environments", TOO_MANY)
    with pytest.raises(CCloudApiError) as caught:
        list(make_client(max_retries=5).list("/org/v2/environments"))
    assert caught.value.status == 429 and caught.value.kind == "http"
    assert len(fake.hits("/org/v2/environments")) == 6
    assert len(fake_time.waits) == 5
    assert "acme" in str(caught.value) and "/org/v2/environments" in str(caught.value)


def test_5xx_is_retried_then_succeeds(fake, make_client):
    fake.route("/org/v2/environments", [Reply(500, {"errors": [{"detail": "boom"}]}), OK_ENVS])
    assert [e["id"] for e in make_client().list("/org/v2/environments")] == ["env-1"]
    assert len(fake.hits("/org/v2/environments")) == 2


def test_5xx_backoff_grows_exponentially(fake, make_client, fake_time):
    fake.route("/org/v2/environments", [Reply(503), Reply(502), Reply(504), OK_ENVS])
    list(make_client().list("/org/v2/environments"))
    assert len(fake_time.waits) == 3
    for wait, base in zip(fake_time.waits, (1, 2, 4), strict=True):
        assert base <= wait <= base + 1, "exponential, plus up to a second of jitter"


def test_400_fails_at_once(fake, make_client, fake_time):
    fake.route("/org/v2/environments", Reply(400, {"errors": [{"status": "400", "detail": "bad page_size"}]}))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client().list("/org/v2/environments"))
    assert caught.value.status == 400
    assert "bad page_size" in str(caught.value)
    assert len(fake.hits("/org/v2/environments")) == 1 and fake_time.waits == []


def test_timeout_then_success(fake, make_client):
    fake.route("/org/v2/environments", [Reply(body={"data": []}, delay=0.6), OK_ENVS])
    assert [e["id"] for e in make_client(timeout_seconds=0.2).list("/org/v2/environments")] == ["env-1"]
    assert len(fake.hits("/org/v2/environments")) == 2


def test_timeouts_exhausted_is_a_timeout_error(fake, make_client):
    fake.route("/org/v2/environments", Reply(body={"data": []}, delay=0.4))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client(timeout_seconds=0.1, max_retries=1).list("/org/v2/environments"))
    assert caught.value.kind == "timeout" and caught.value.status is None


def test_404_means_empty(fake, make_client):
    client = make_client()
    assert list(client.list("/cmk/v2/clusters", {"environment": "env-gone"})) == []
    assert client.get_raw("/connect/v1/environments/env-1/clusters/lkc-1/connectors") == {}


def test_get_raw_returns_the_connector_map_unpaginated(fake, make_client):
    path = "/connect/v1/environments/env-1/clusters/lkc-1/connectors"
    fake.route(path, Reply(body=tf("connector/managed/read_created_connectors.json")))
    body = make_client().get_raw(path, {"expand": "info,status,id"})
    assert body["test_connector"]["id"]["id"] == "lcc-abc123"
    assert fake.hits(path)[0].query == {"expand": "info,status,id"}


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-RateLimit-Reset": "0"}, 1.0),
        ({"X-RateLimit-Reset": "3"}, 3.0),
        ({"rateLimit-reset": "2"}, 2.0),
        ({"Retry-After": "0.5", "X-RateLimit-Reset": "9"}, 0.5),
        ({"Retry-After": "20"}, 20.0),
        ({"Retry-After": "soon", "X-RateLimit-Reset": "4"}, 4.0),
    ],
)
def test_rate_limit_headers_set_the_wait(fake, make_client, fake_time, headers, wait):
    """The server's hint is the wait, beyond our own backoff cap; a reset header is floored at a second."""
    fake.route("/org/v2/environments", [Reply(429, {}, headers), OK_ENVS])
    list(make_client(backoff_cap_seconds=7.0).list("/org/v2/environments"))
    assert fake_time.waits == [wait]


def test_repeated_page_token_is_an_error(fake, make_client):
    body = {"data": [{"id": "env-1"}], "metadata": {"next": "https://api.confluent.cloud/x?page_token=same"}}
    fake.route("/org/v2/environments", Reply(body=body))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client().list("/org/v2/environments"))
    assert caught.value.kind == "pagination"
    assert "/org/v2/environments" in str(caught.value)
    assert len(fake.hits("/org/v2/environments")) == 2


def test_truncated_json_is_an_error_after_retries(fake, make_client):
    fake.route("/org/v2/environments", Reply(raw=b'{"data": [{"id": "env-1"'))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client(max_retries=2).list("/org/v2/environments"))
    assert caught.value.kind == "invalid_response" and caught.value.status == 200
    assert len(fake.hits("/org/v2/environments")) == 3


def test_truncated_json_once_then_good_body_succeeds(fake, make_client):
    fake.route("/org/v2/environments", [Reply(raw=b'{"data": ['), OK_ENVS])
    assert [e["id"] for e in make_client().list("/org/v2/environments")] == ["env-1"]


def test_body_shorter_than_content_length_is_a_connection_error(fake, make_client):
    fake.route("/org/v2/environments", Reply(raw=b'{"data": []', content_length=500))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client(max_retries=1).list("/org/v2/environments"))
    assert caught.value.kind == "connection"


def test_data_that_is_not_a_list_is_an_error(fake, make_client):
    fake.route("/org/v2/environments", Reply(body={"data": {"id": "env-1"}}))
    with pytest.raises(CCloudApiError, match="not an array"):
        list(make_client().list("/org/v2/environments"))


def test_requests_are_paced(fake, make_client):
    fake.route("/org/v2/environments", OK_ENVS)
    settings = HttpSettings(base_url=fake.url, min_interval_seconds=0.05)
    client = CCloudClient(settings, API_KEY, Secret(API_SECRET), "acme")
    for _ in range(3):
        list(client.list("/org/v2/environments"))
    client.close()
    times = [h.at for h in fake.hits("/org/v2/environments")]
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(times))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_credential_in_any_error_or_log(fake, make_client, caplog):
    echo = {"errors": [{"status": "401", "detail": f"invalid key {API_KEY} with secret {API_SECRET}"}]}
    fake.route("/unauthorized", Reply(401, echo, {"WWW-Authenticate": 'Basic error="invalid_key"'}))
    fake.route("/server-error", Reply(500, echo))
    fake.route("/rate-limited", Reply(429, echo, {"Retry-After": "0"}))
    fake.route("/slow", Reply(body={}, delay=0.4))
    fake.route("/truncated", Reply(raw=f'{{"detail": "{API_SECRET}'.encode()))
    fake.route("/loop", Reply(body={"data": [], "metadata": {"next": "https://x/?page_token=same"}}))
    client = make_client(timeout_seconds=0.1, max_retries=1)
    unreachable = CCloudClient(
        HttpSettings(base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=1, min_interval_seconds=0),
        API_KEY,
        Secret(API_SECRET),
        "acme",
    )
    failures = []
    caplog.set_level(logging.DEBUG)
    for call in (
        lambda: list(client.list("/unauthorized")),
        lambda: list(client.list("/server-error")),
        lambda: list(client.list("/rate-limited")),
        lambda: list(client.list("/slow")),
        lambda: list(client.list("/truncated")),
        lambda: list(client.list("/loop")),
        lambda: client.get_raw("/unauthorized"),
        lambda: list(unreachable.list("/org/v2/environments")),
    ):
        with pytest.raises(CCloudApiError) as caught:
            call()
        failures.append(caught.value)
    unreachable.close()

    assert {f.kind for f in failures} == {"http", "timeout", "invalid_response", "pagination", "connection"}
    texts = [str(f) for f in failures] + [repr(f) for f in failures] + [caplog.text, repr(client)]
    for text in texts:
        assert API_KEY not in text and API_SECRET not in text
    assert "invalid key *** with secret ***" in str(failures[0])
    assert all("acme" in str(f) for f in failures)


def test_a_lone_surrogate_is_refused_at_once_naming_where_it_is(fake, make_client):
    accounts = [{"id": "sa-1", "display_name": "payments"}, {"id": "sa-2", "display_name": "Pay\ud800ments"}]
    fake.route("/iam/v2/service-accounts", listing(accounts))
    with pytest.raises(CCloudApiError) as caught:
        list(make_client().list("/iam/v2/service-accounts"))
    assert caught.value.kind == "invalid_response" and not caught.value.transient
    assert "GET /iam/v2/service-accounts" in str(caught.value)
    assert "$.data[1].display_name holds an unpaired UTF-16 surrogate" in str(caught.value)
    assert len(fake.hits("/iam/v2/service-accounts")) == 1


def test_an_escaped_surrogate_pair_is_ordinary_text(fake, make_client):
    fake.route("/iam/v2/service-accounts", listing([{"id": "sa-1", "display_name": "Team \U0001f680"}]))
    [account] = make_client().list("/iam/v2/service-accounts")
    assert account["display_name"] == "Team \U0001f680"
