from __future__ import annotations

from typing import Any

import pytest

from chargeback_assets.ecosystems.prometheus_settings import MetricsStep, PrometheusSettings
from chargeback_assets.validation import ConfigError, Secret, settings, validate

PATH = "tenants.t.plugin_settings.metrics"
TOKEN = "tok-do-not-show"


def read(raw: dict[str, Any]) -> PrometheusSettings:
    return validate(PrometheusSettings, raw, at=PATH)


@settings
class Stepped:
    metrics_step_seconds: MetricsStep = 3600


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        read(raw)
    return str(caught.value)


def test_defaults() -> None:
    assert read({"url": "http://127.0.0.1:9090/"}) == PrometheusSettings(url="http://127.0.0.1:9090")


def test_basic_and_bearer_auth() -> None:
    basic = read({"url": "https://prom.example", "auth_type": "basic", "username": "u", "password": TOKEN})
    assert (basic.username, basic.password) == ("u", Secret(TOKEN))
    bearer = read(
        {"url": "https://prom.example", "auth_type": "bearer", "bearer_token": TOKEN, "timeout_seconds": 5}
    )
    assert (bearer.bearer_token, bearer.timeout_seconds) == (Secret(TOKEN), 5.0)
    assert TOKEN not in repr(basic) + repr(bearer)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"auth_type": "basic", "username": "u"}, f"{PATH}.password: required when auth_type is basic"),
        ({"auth_type": "basic", "password": TOKEN}, f"{PATH}.username: required when auth_type is basic"),
        ({"auth_type": "bearer"}, f"{PATH}.bearer_token: required when auth_type is bearer"),
        (
            {"auth_type": "bearer", "bearer_token": TOKEN, "username": "u"},
            f"{PATH}.username: not allowed when",
        ),
        ({"password": TOKEN}, f"{PATH}.password: not allowed when auth_type is none"),
        (
            {"auth_type": "none", "bearer_token": TOKEN},
            f"{PATH}.bearer_token: not allowed when auth_type is none",
        ),
        ({"auth_type": "none", "username": "u"}, f"{PATH}.username: not allowed when auth_type is none"),
        ({"auth_type": "digest"}, f"{PATH}.auth_type: must be one of none|basic|bearer, got 'digest'"),
        ({"type": "graphite"}, f"{PATH}.type: must be one of prometheus, got 'graphite'"),
        ({"timeout_seconds": 0}, f"{PATH}.timeout_seconds: must be greater than 0, got 0"),
        ({"timeout_seconds": 301}, f"{PATH}.timeout_seconds: must be at most 300, got 301"),
    ],
)
def test_rejections(raw: dict[str, Any], expected: str) -> None:
    message = error({"url": "http://127.0.0.1:9090", **raw})
    assert message.startswith(expected)
    assert TOKEN not in message


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://prom", "http://", "http://a b"])
def test_url_must_be_http(url: str) -> None:
    assert error({"url": url}).startswith(f"{PATH}.url: must be an http:// or https:// URL")


def test_url_is_required() -> None:
    assert error({}) == f"{PATH}.url: required key is missing"


@pytest.mark.parametrize("step", [60, 300, 3600, 86400])
def test_metrics_step_dividing_a_day(step: int) -> None:
    assert validate(Stepped, {"metrics_step_seconds": step}).metrics_step_seconds == step


@pytest.mark.parametrize(
    ("step", "rule"),
    [
        (7000, "must divide a day (86400 s) evenly, got 7000"),
        (172800, "must divide a day (86400 s) evenly, got 172800"),
        (0, "must be greater than 0, got 0"),
        (-60, "must be greater than 0, got -60"),
    ],
)
def test_metrics_step_rejections(step: int, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(Stepped, {"metrics_step_seconds": step}, at="p")
    assert str(caught.value) == f"p.metrics_step_seconds: {rule}"
