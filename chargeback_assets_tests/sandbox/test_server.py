from __future__ import annotations

import base64
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chargeback_assets.sandbox import SandboxServer, generate_org


def _walk(http, url: str) -> tuple[list[dict], list[str]]:
    items, urls = [], []
    while url:
        urls.append(url)
        page = http.get(url, timeout=10).json()
        items.extend(page["data"])
        assert page["metadata"] == {} or "next" in page["metadata"]
        url = page["metadata"].get("next")
    return items, urls


def test_page_size_3_walks_every_service_account_once(server, http, small_org):
    items, urls = _walk(http, server.url + "/iam/v2/service-accounts?page_size=3")
    assert [i["id"] for i in items] == [sa["id"] for sa in small_org.objects["service_accounts"]]
    assert len(urls) == 4  # 12 accounts, 3 per page
    assert all(u.startswith(server.url + "/iam/v2/service-accounts?") for u in urls[1:])


def test_next_urls_keep_the_filters(server, http, small_org):
    env = small_org.environment_ids()[1]
    owner = small_org.objects["api_keys"][0]["spec"]["owner"]["id"]
    for path, query, expected in [
        ("/cmk/v2/clusters", {"environment": env}, small_org.cluster_ids(env)),
        (
            "/iam/v2/api-keys",
            {"spec.owner": owner},
            [k["id"] for k in small_org.objects["api_keys"] if k["spec"]["owner"]["id"] == owner],
        ),
    ]:
        first = http.get(server.url + path, params={**query, "page_size": 1}, timeout=10).json()
        items, urls = _walk(
            http, server.url + path + "?" + "&".join(f"{k}={v}" for k, v in query.items()) + "&page_size=1"
        )
        assert [i["id"] for i in items] == expected
        for url in urls[1:]:
            params = parse_qs(urlsplit(url).query)
            assert all(params[k] == [v] for k, v in query.items())
            assert "page_token" in params
        assert (first["metadata"].get("total_size") or len(expected)) == len(expected)


def test_page_size_limits_and_bad_tokens(server, http):
    too_big = http.get(server.url + "/iam/v2/users?page_size=101", timeout=10)
    assert too_big.status_code == 400
    assert too_big.json()["errors"][0]["source"] == {"parameter": "page_size"}
    assert http.get(server.url + "/iam/v2/users?page_size=100", timeout=10).status_code == 200
    costs_ok = http.get(
        server.url + "/billing/v1/costs?start_date=2026-06-01&end_date=2026-06-02&page_size=10000"
    )
    assert costs_ok.status_code == 200
    costs_big = http.get(
        server.url + "/billing/v1/costs?start_date=2026-06-01&end_date=2026-06-02&page_size=10001"
    )
    assert costs_big.status_code == 400
    assert http.get(server.url + "/iam/v2/users?page_token=garbage!", timeout=10).status_code == 400


def test_costs_window_rules(server, http):
    def status(start: str, end: str) -> int:
        return http.get(
            server.url + f"/billing/v1/costs?start_date={start}&end_date={end}", timeout=10
        ).status_code

    assert status("2026-05-31", "2026-07-01") == 200  # 31 days
    assert status("2026-05-30", "2026-07-01") == 400  # 32 days
    assert status("2026-06-02", "2026-06-02") == 400
    missing = http.get(server.url + "/billing/v1/costs?start_date=2026-06-02", timeout=10)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["code"] == "invalid_filter"


def test_headers_errors_and_unknown_paths(server, http, small_org):
    ok = http.get(server.url + "/org/v2/environments", timeout=10)
    assert ok.headers["X-Request-Id"]
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(ok.headers)
    unknown = http.get(server.url + "/nope/v1/things", timeout=10)
    assert unknown.status_code == 404
    assert unknown.headers["X-Request-Id"] != ok.headers["X-Request-Id"]
    assert unknown.json()["errors"][0]["code"] == "resource_not_found"
    connect = http.get(
        server.url + "/connect/v1/environments/env-none/clusters/lkc-none/connectors", timeout=10
    )
    assert connect.status_code == 404
    assert connect.json()["error"]["code"] == 404
    pools = http.get(server.url + "/iam/v2/identity-providers/op-none/identity-pools", timeout=10)
    assert pools.json() == {
        "error_code": 404,
        "message": "Provider op-none either doesn't exist or is not active",
    }
    env = small_org.environment_ids()[0]
    unauth = requests.get(f"{server.url}/connect/v1/environments/{env}/clusters/x/connectors", timeout=10)
    assert unauth.status_code == 401
    assert unauth.json() == {"error": {"code": 401, "message": "Unauthorized"}}


def test_rate_limit_fault_then_recovery(server, http):
    server.faults.set("rate_limit", times=2, path_prefix="/iam/", seconds=0.05)
    statuses = [http.get(server.url + "/iam/v2/users", timeout=10) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "0.05"
    assert statuses[0].headers["X-RateLimit-Reset"] == "0.05"
    assert http.get(server.url + "/org/v2/environments", timeout=10).status_code == 200
    recorded = [(r.path, r.status) for r in server.requests]
    assert recorded == [
        ("/iam/v2/users", 429),
        ("/iam/v2/users", 429),
        ("/iam/v2/users", 200),
        ("/org/v2/environments", 200),
    ]


def test_server_error_fault_over_http(server, http):
    armed = requests.post(
        server.url + "/_sandbox/faults", json={"kind": "server_error", "status": 500, "times": 1}
    )
    assert armed.status_code == 200
    first = http.get(server.url + "/org/v2/environments", timeout=10)
    assert first.status_code == 500
    assert first.json()["errors"][0]["status"] == "500"
    assert http.get(server.url + "/org/v2/environments", timeout=10).status_code == 200
    assert requests.post(server.url + "/_sandbox/faults", json={"kind": "meltdown"}).status_code == 400


def test_delay_fault_outlasts_a_client_timeout(server, http):
    """The delayed answer comes after the client gave up (the ReadTimeout is the proof, not a clock)."""
    server.faults.set("delay", times=1, seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(server.url + "/iam/v2/users", timeout=0.2)
    assert http.get(server.url + "/iam/v2/users", timeout=5).status_code == 200


def test_truncated_fault_cuts_the_json_body(server, http):
    server.faults.set("truncated", times=1, path_prefix="/billing/")
    cut = http.get(server.url + "/billing/v1/costs?start_date=2026-06-01&end_date=2026-06-02", timeout=10)
    assert cut.status_code == 200
    with pytest.raises(ValueError):
        cut.json()
    whole = http.get(server.url + "/billing/v1/costs?start_date=2026-06-01&end_date=2026-06-02", timeout=10)
    assert whole.text.startswith(cut.text)
    assert len(cut.content) < len(whole.content)


def test_repeat_page_token_fault_repeats_forever_until_cleared(server, http):
    requests.post(server.url + "/_sandbox/faults", json={"kind": "repeat_page_token", "times": None})
    url = server.url + "/iam/v2/service-accounts?page_size=5"
    tokens = []
    for _ in range(4):
        url = http.get(url, timeout=10).json()["metadata"]["next"]
        tokens.append(parse_qs(urlsplit(url).query)["page_token"][0])
    assert len(set(tokens)) == 1
    assert requests.delete(server.url + "/_sandbox/faults").json() == {"armed": []}
    items, _ = _walk(http, server.url + "/iam/v2/service-accounts?page_size=5")
    assert len(items) == 12


def _day_total(http, url: str, day: str) -> Decimal:
    next_day = f"{day[:8]}{int(day[8:]) + 1:02d}"
    rows = http.get(f"{url}/billing/v1/costs?start_date={day}&end_date={next_day}", timeout=10).json()["data"]
    return sum((Decimal(str(r["amount"])) for r in rows), Decimal(0))


def test_revise_and_revert_change_and_restore_a_day_exactly(server, http, small_org):
    day = "2026-06-10"
    original_rows = [r for r in small_org.costs if r["start_date"] == day]
    original = sum((Decimal(str(r["amount"])) for r in original_rows), Decimal(0))
    expected = sum(
        (
            (Decimal(str(r["amount"])) * Decimal("1.1")).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            for r in original_rows
        ),
        Decimal(0),
    )
    assert _day_total(http, server.url, day) == original
    server.revise_bill(day)
    assert _day_total(http, server.url, day) == expected != original
    assert _day_total(http, server.url, "2026-06-11") == sum(
        (Decimal(str(r["amount"])) for r in small_org.costs if r["start_date"] == "2026-06-11"), Decimal(0)
    )
    server.revert_bill(day)
    assert _day_total(http, server.url, day) == original
    assert (
        requests.post(server.url + "/_sandbox/revise", json={"date": day, "factor": "0.5"}).status_code == 200
    )
    halved = sum(
        (
            (Decimal(str(r["amount"])) * Decimal("0.5")).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            for r in original_rows
        ),
        Decimal(0),
    )
    assert _day_total(http, server.url, day) == halved
    assert requests.post(server.url + "/_sandbox/revert", json={"date": day}).status_code == 200
    assert _day_total(http, server.url, day) == original


def test_an_emptied_day_serves_no_costs_until_reverted(server, http, small_org):
    day = "2026-06-10"
    original = sum((Decimal(str(r["amount"])) for r in small_org.costs if r["start_date"] == day), Decimal(0))
    assert requests.post(server.url + "/_sandbox/empty", json={"date": day}).json() == {"emptied": day}
    rows = http.get(f"{server.url}/billing/v1/costs?start_date={day}&end_date=2026-06-11", timeout=10).json()
    assert rows["data"] == []
    assert _day_total(http, server.url, "2026-06-11") > 0, "only the emptied day is affected"
    server.revert_bill(day)
    assert _day_total(http, server.url, day) == original > 0
    assert requests.post(server.url + "/_sandbox/empty", json={"date": "1999-01-01"}).status_code == 400


def test_replaced_cost_rows_are_served_verbatim_until_reverted(server, http, small_org):
    """A test can serve any rows for a day, hostile ones included, over Python or HTTP."""
    day, url = "2026-06-10", server.url + "/billing/v1/costs?start_date=2026-06-10&end_date=2026-06-11"
    original = http.get(url, timeout=10).json()["data"]
    assert original == [r for r in small_org.costs if r["start_date"] == day]
    hostile = [
        {**original[0], "amount": "12.5USD"},
        original[0],
        original[0],
        {**original[0], "id": "dlz-stray", "start_date": "2026-01-01"},
        "not even an object",
    ]
    server.replace_costs(day, hostile)
    assert http.get(url, timeout=10).json()["data"] == hostile
    wider = server.url + "/billing/v1/costs?start_date=2026-06-09&end_date=2026-06-12"
    assert http.get(wider, timeout=10).json()["data"] == [
        *(r for r in small_org.costs if r["start_date"] == "2026-06-09"),
        *hostile,
        *(r for r in small_org.costs if r["start_date"] == "2026-06-11"),
    ]
    server.revert_bill(day)
    assert http.get(url, timeout=10).json()["data"] == original

    replaced = requests.post(
        server.url + "/_sandbox/costs", json={"date": day, "rows": hostile[:1]}, timeout=10
    )
    assert replaced.json() == {"replaced": day, "rows": 1}
    assert http.get(url, timeout=10).json()["data"] == hostile[:1]
    assert requests.post(server.url + "/_sandbox/revert", json={"date": day}, timeout=10).status_code == 200
    assert http.get(url, timeout=10).json()["data"] == original
    refused = requests.post(server.url + "/_sandbox/costs", json={"date": day, "rows": {}}, timeout=10)
    assert refused.status_code == 400 and "must be a list" in refused.json()["errors"][0]["detail"]


def test_configured_credentials_are_enforced(small_org):
    with SandboxServer(small_org, api_key="k1", api_secret="s1") as custom:
        assert requests.get(custom.url + "/iam/v2/users", auth=("k1", "s1"), timeout=10).status_code == 200
        assert (
            requests.get(custom.url + "/iam/v2/users", auth=("sandbox-key", "sandbox-secret")).status_code
            == 401
        )


def test_echo_credentials_fault_quotes_the_credentials_as_sent_encoded_and_decoded(server, http):
    armed = requests.post(
        server.url + "/_sandbox/faults",
        json={"kind": "echo_credentials", "status": 403, "path_prefix": "/iam/", "times": 1},
    )
    assert armed.status_code == 200
    refused = http.get(server.url + "/iam/v2/users", timeout=10)
    assert refused.status_code == 403
    header = "Basic " + base64.b64encode(b"sandbox-key:sandbox-secret").decode()
    assert refused.text.splitlines() == [
        f"Authorization: {header}",
        "credentials: sandbox-key:sandbox-secret",
        "login: /login?credentials=sandbox-key%3Asandbox-secret",
    ]
    assert http.get(server.url + "/iam/v2/users", timeout=10).status_code == 200
    with pytest.raises(ValueError, match="HTTP error status"):
        server.faults.set("echo_credentials", status=200)


def test_rename_gives_an_object_a_new_display_name_from_the_next_request_on():
    with SandboxServer(generate_org("small", seed=3, days=5)) as own, requests.Session() as http:
        http.auth = ("sandbox-key", "sandbox-secret")
        first = own.org.objects["service_accounts"][0]["id"]
        hostile = '=cmd|" /c calc"!A0\r\nx\x00'
        renamed = requests.post(
            own.url + "/_sandbox/rename", json={"id": first, "display_name": hostile}, timeout=10
        )
        assert renamed.json() == {"renamed": first}
        listed = http.get(own.url + "/iam/v2/service-accounts", params={"page_size": 100}, timeout=10)
        assert {sa["id"]: sa["display_name"] for sa in listed.json()["data"]}[first] == hostile
        unknown = requests.post(own.url + "/_sandbox/rename", json={"id": "sa-nope", "display_name": "x"})
        assert unknown.status_code == 400 and "sa-nope" in unknown.text
