"""Every endpoint's real HTTP responses validate, as served, against Confluent's OpenAPI schema."""

from __future__ import annotations

import copy
from functools import cache

import jsonschema
import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from chargeback_assets_tests.contracts import CONTRACTS

ORG_SPEC = "sdk/org-v2.openapi.yaml"
CONNECT_SPEC = "sdk/connect-v1.openapi.yaml"
CONNECTORS_PATH = "/connect/v1/environments/{environment_id}/clusters/{kafka_cluster_id}/connectors"


@cache
def _spec(name: str) -> dict:
    return yaml.load((CONTRACTS / name).read_text(), Loader=yaml.CSafeLoader)


def _validate(spec_name: str, path: str, status: str, body: object) -> None:
    spec = _spec(spec_name)
    response = spec["paths"][path]["get"]["responses"][status]
    schema = {"components": spec["components"], "allOf": [response["content"]["application/json"]["schema"]]}
    OAS30ReadValidator(schema, format_checker=oas30_format_checker).validate(body)


def _walk(http, url: str) -> list[dict]:
    pages = []
    while url:
        reply = http.get(url, timeout=10)
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        url = pages[-1]["metadata"].get("next")
    return pages


def _env_lists(org):
    env = org.environment_ids()[0]
    return [
        ("sdk/cmk-v2.openapi.yaml", "/cmk/v2/clusters", f"?environment={env}"),
        ("sdk/srcm-v3.openapi.yaml", "/srcm/v3/clusters", f"?environment={env}"),
        ("sdk/ksql-v2.openapi.yaml", "/ksqldbcm/v2/clusters", f"?environment={env}"),
        ("sdk/flink-v2.openapi.yaml", "/fcpm/v2/compute-pools", f"?environment={env}"),
    ]


PLAIN_LISTS = [
    (ORG_SPEC, "/org/v2/environments"),
    (ORG_SPEC, "/org/v2/organizations"),
    ("sdk/iam-v2.openapi.yaml", "/iam/v2/service-accounts"),
    ("sdk/iam-v2.openapi.yaml", "/iam/v2/users"),
    ("sdk/apikeys-v2.openapi.yaml", "/iam/v2/api-keys"),
    ("sdk/identity-provider-v2.openapi.yaml", "/iam/v2/identity-providers"),
]


@pytest.mark.parametrize(("spec_name", "path"), PLAIN_LISTS, ids=[p for _, p in PLAIN_LISTS])
def test_plain_lists_match_their_schema(server, http, spec_name, path):
    pages = _walk(http, server.url + path + "?page_size=7")
    for page in pages:
        _validate(spec_name, path, "200", page)
    assert sum(len(p["data"]) for p in pages) >= 1


@pytest.mark.parametrize("index", range(4), ids=["cmk", "srcm-v3", "ksqldbcm", "fcpm"])
def test_environment_scoped_lists_match_their_schema(server, http, small_org, index):
    spec_name, path, query = _env_lists(small_org)[index]
    pages = _walk(http, server.url + path + query)
    for page in pages:
        _validate(spec_name, path, "200", page)
    assert sum(len(p["data"]) for p in pages) >= 1
    missing_env = http.get(server.url + path, timeout=10)
    assert missing_env.status_code == 400
    _validate(spec_name, path, "400", missing_env.json())


def test_identity_pools_match_their_schema(server, http, small_org):
    path = "/iam/v2/identity-providers/{provider_id}/identity-pools"
    for provider in small_org.identity_pools:
        for page in _walk(http, f"{server.url}/iam/v2/identity-providers/{provider}/identity-pools"):
            _validate("sdk/identity-provider-v2.openapi.yaml", path, "200", page)
            assert page["data"]


def test_flink_statements_match_their_schema(server, http, small_org):
    path = "/sql/v1/organizations/{organization_id}/environments/{environment_id}/statements"
    seen = 0
    for env in small_org.environment_ids():
        org = small_org.organization_id
        url = f"{server.url}/sql/v1/organizations/{org}/environments/{env}/statements?page_size=2"
        for page in _walk(http, url):
            _validate("sdk/flink-gateway-v1.openapi.yaml", path, "200", page)
            seen += len(page["data"])
    assert seen == len(small_org.objects["flink_statements"])


def test_connector_lists_match_their_schema(server, http, small_org):
    for env, by_cluster in small_org.connectors.items():
        for lkc, entries in by_cluster.items():
            base = f"{server.url}/connect/v1/environments/{env}/clusters/{lkc}/connectors"
            names = http.get(base, timeout=10)
            _validate(CONNECT_SPEC, CONNECTORS_PATH, "200", names.json())
            assert names.json() == sorted(entries)
            expanded = http.get(base + "?expand=info,status,id", timeout=10).json()
            _validate(CONNECT_SPEC, CONNECTORS_PATH + "?expand=info,status,id", "200", expanded)
            repeated = http.get(base + "?expand=info&expand=status&expand=id", timeout=10).json()
            assert repeated == expanded == entries


def test_costs_match_the_patched_billing_schema(server, http):
    spec_name = "derived/billing-v1.openapi.2026-docs-patched.yaml"
    pages = _walk(
        http, server.url + "/billing/v1/costs?start_date=2026-06-01&end_date=2026-06-04&page_size=50"
    )
    for page in pages:
        _validate(spec_name, "/billing/v1/costs", "200", page)
        assert set(page["metadata"]) <= {"next"}
    assert len(pages) > 1
    bad = http.get(server.url + "/billing/v1/costs?start_date=2026-06-04&end_date=2026-06-01", timeout=10)
    assert bad.status_code == 400
    _validate(spec_name, "/billing/v1/costs", "400", bad.json())


def test_unauthenticated_answer_matches_the_failure_schema(server):
    import requests

    reply = requests.get(server.url + "/org/v2/environments", auth=("sandbox-key", "wrong"), timeout=10)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert reply.json()["errors"][0]["code"] == "user_unauthenticated"
    _validate(ORG_SPEC, "/org/v2/environments", "401", reply.json())


def test_the_validator_rejects_a_broken_response(server, http, small_org):
    """Guards the contract tests themselves: a Dedicated cluster without `cku` must not validate."""
    env = small_org.environment_ids()[0]
    page = http.get(f"{server.url}/cmk/v2/clusters?environment={env}", timeout=10).json()
    broken = copy.deepcopy(page)
    dedicated = next(c for c in broken["data"] if c["spec"]["config"]["kind"] == "Dedicated")
    del dedicated["spec"]["config"]["cku"]
    with pytest.raises(jsonschema.ValidationError):
        _validate("sdk/cmk-v2.openapi.yaml", "/cmk/v2/clusters", "200", broken)
