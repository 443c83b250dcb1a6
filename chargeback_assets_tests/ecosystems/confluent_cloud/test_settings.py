from __future__ import annotations

from typing import Any

import pytest

from chargeback_assets.ecosystems.confluent_cloud.settings import (
    CCloudApi,
    ConfluentCloudSettings,
    FlinkRegion,
    HttpSettings,
)
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.validation import ConfigError, Secret, validate

PATH = "tenants.acme.plugin_settings"
SECRET_VALUE = "cc-secret-do-not-show"


def settings(**extra: Any) -> dict[str, Any]:
    return {"ccloud_api": {"key": "KEY", "secret": SECRET_VALUE}, **extra}


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(ConfluentCloudSettings, raw, at=PATH)
    message = str(caught.value)
    assert SECRET_VALUE not in message
    return message


def test_minimal_settings_take_the_defaults() -> None:
    parsed = validate(ConfluentCloudSettings, settings(), at=PATH)
    assert parsed == ConfluentCloudSettings(ccloud_api=CCloudApi("KEY", Secret(SECRET_VALUE)))
    assert (parsed.api_key, parsed.api_secret, parsed.days_per_query) == ("KEY", Secret(SECRET_VALUE), 15)
    assert parsed.http == HttpSettings()


def test_every_key() -> None:
    parsed = validate(
        ConfluentCloudSettings,
        {
            "ccloud_api": {"key": "KEY", "secret": SECRET_VALUE, "base_url": "http://127.0.0.1:8765"},
            "http": {
                "timeout_seconds": 10,
                "max_retries": 0,
                "min_interval_seconds": 0,
                "backoff_cap_seconds": 5,
            },
            "billing_api": {"days_per_query": 31},
            "metrics": {"type": "prometheus", "url": "http://127.0.0.1:8765"},
            "metrics_step_seconds": 900,
            "flink": [
                {"region_id": "us-east-1", "key": "FK", "secret": "fs"},
                {"region_id": "eu-west-1", "key": "FK2", "secret": "fs2", "base_url": "https://flink.eu"},
            ],
        },
        at=PATH,
    )
    assert parsed.http == HttpSettings(
        base_url="http://127.0.0.1:8765",
        timeout_seconds=10.0,
        max_retries=0,
        min_interval_seconds=0.0,
        backoff_cap_seconds=5.0,
    )
    assert (parsed.days_per_query, parsed.metrics_step_seconds) == (31, 900)
    assert parsed.metrics == PrometheusSettings(url="http://127.0.0.1:8765")
    assert parsed.flink == (
        FlinkRegion("us-east-1", "FK", Secret("fs")),
        FlinkRegion("eu-west-1", "FK2", Secret("fs2"), "https://flink.eu"),
    )
    assert SECRET_VALUE not in repr(parsed) and "fs2" not in repr(parsed)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, f"{PATH}.ccloud_api: required key is missing"),
        ({"ccloud_api": {"secret": SECRET_VALUE}}, f"{PATH}.ccloud_api.key: required key is missing"),
        ({"ccloud_api": {"key": "k"}}, f"{PATH}.ccloud_api.secret: required key is missing"),
        (
            settings(extra=1),
            f"{PATH}: unknown key 'extra'; allowed keys: billing_api, ccloud_api, flink, http,",
        ),
        (
            {"ccloud_api": {"key": "k", "secret": SECRET_VALUE, "base_url": "api.confluent.cloud"}},
            f"{PATH}.ccloud_api.base_url: must be an http:// or https:// URL, got 'api.confluent.cloud'",
        ),
        (
            settings(http={"timeout_seconds": 0}),
            f"{PATH}.http.timeout_seconds: must be between 1 and 300, got 0",
        ),
        (
            settings(http={"timeout_seconds": 301}),
            f"{PATH}.http.timeout_seconds: must be between 1 and 300, got 301",
        ),
        (settings(http={"max_retries": -1}), f"{PATH}.http.max_retries: must be between 0 and 10, got -1"),
        (settings(http={"max_retries": 11}), f"{PATH}.http.max_retries: must be between 0 and 10, got 11"),
        (
            settings(http={"min_interval_seconds": 10.5}),
            f"{PATH}.http.min_interval_seconds: must be between 0 and 10, got 10.5",
        ),
        (
            settings(billing_api={"days_per_query": 0}),
            f"{PATH}.billing_api.days_per_query: must be between 1 and 31",
        ),
        (
            settings(billing_api={"days_per_query": 32}),
            f"{PATH}.billing_api.days_per_query: must be between 1 and 31",
        ),
        (
            settings(metrics_step_seconds=7000),
            f"{PATH}.metrics_step_seconds: must divide a day (86400 s) evenly",
        ),
        (settings(metrics={"auth_type": "basic"}), f"{PATH}.metrics.url: required key is missing"),
        (
            settings(metrics={"url": "http://p", "auth_type": "basic", "username": "u"}),
            f"{PATH}.metrics.password: required when auth_type is basic",
        ),
        (
            settings(flink=[{"region_id": "r", "key": "k"}]),
            f"{PATH}.flink[0].secret: required key is missing",
        ),
        (
            settings(
                flink=[
                    {"region_id": "r", "key": "k", "secret": "s"},
                    {"region_id": "r", "key": "k", "secret": "s"},
                ]
            ),
            f"{PATH}.flink[1].region_id: duplicate region_id 'r', already used at {PATH}.flink[0].region_id",
        ),
        (settings(flink={"region_id": "r"}), f"{PATH}.flink: expected a list, got mapping"),
    ],
)
def test_rejections(raw: dict[str, Any], expected: str) -> None:
    assert error(raw).startswith(expected)


def test_plugin_settings_must_be_a_mapping() -> None:
    assert error(["ccloud_api"]) == f"{PATH}: expected a mapping, got list"  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [f"{SECRET_VALUE}\n", f"  {SECRET_VALUE}\t"])
def test_secrets_are_stripped_of_surrounding_whitespace(secret: str) -> None:
    """A secret read with `$(cat file)` ends in a newline, which no HTTP header can carry."""
    parsed = validate(ConfluentCloudSettings, {"ccloud_api": {"key": "k", "secret": secret}}, at=PATH)
    assert parsed.api_secret.reveal() == SECRET_VALUE


@pytest.mark.parametrize(
    "secret", [f"{SECRET_VALUE}\r\nX-Injected: 1", f"a\x00{SECRET_VALUE}", f"€{SECRET_VALUE}"]
)
def test_secrets_an_http_header_cannot_carry_are_refused_without_showing_them(secret: str) -> None:
    assert error({"ccloud_api": {"key": "k", "secret": secret}}) == (
        f"{PATH}.ccloud_api.secret: holds a character an HTTP header cannot carry "
        "(a control character or non-Latin-1)"
    )


def test_secret_in_wrong_type_is_not_echoed() -> None:
    assert error({"ccloud_api": {"key": "k", "secret": {"value": SECRET_VALUE}}}) == (
        f"{PATH}.ccloud_api.secret: expected a string, got mapping"
    )
