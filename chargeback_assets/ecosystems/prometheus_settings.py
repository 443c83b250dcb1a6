"""Settings of a Prometheus-compatible metrics endpoint, shared by every ecosystem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chargeback_assets.settings_reader import Section, defaults, require_exactly
from chargeback_assets.validation import ConfigError, Secret

AuthType = Literal["none", "basic", "bearer"]


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    url: str
    auth_type: AuthType = "none"
    username: str | None = None
    password: Secret | None = None
    bearer_token: Secret | None = None
    timeout_seconds: float = 30.0
    max_attempts: int = 4


_CREDENTIALS_BY_AUTH_TYPE: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("bearer_token",),
}
SECONDS_PER_DAY = 86_400


def read_prometheus_settings(section: Section) -> PrometheusSettings:
    """Reads a `metrics` block; the credentials given must be exactly those its `auth_type` uses."""
    default = defaults(PrometheusSettings)
    with section:
        section.string("type", "prometheus", choices=("prometheus",))
        url = section.url("url")
        auth_type = section.string(
            "auth_type", default["auth_type"], choices=tuple(_CREDENTIALS_BY_AUTH_TYPE)
        )
        credentials = {
            "username": section.string("username", None),
            "password": section.secret("password", None),
            "bearer_token": section.secret("bearer_token", None),
        }
        timeout_seconds = section.number("timeout_seconds", default["timeout_seconds"], gt=0, le=300)
        max_attempts = section.integer("max_attempts", default["max_attempts"], ge=1, le=10)
        for name, value in credentials.items():
            wanted = name in _CREDENTIALS_BY_AUTH_TYPE[auth_type]
            require_exactly(section, {name: value}, wanted=wanted, condition=f"auth_type is {auth_type}")
        return PrometheusSettings(
            url=url,
            auth_type=auth_type,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            **credentials,
        )


def read_metrics_step(section: Section, default: int) -> int:
    """`metrics_step_seconds`: day windows are cut at UTC midnight, so a step must tile a day exactly."""
    step = section.integer("metrics_step_seconds", default, gt=0)
    if SECONDS_PER_DAY % step:
        raise ConfigError(
            section.at("metrics_step_seconds"), f"must divide a day ({SECONDS_PER_DAY} s) evenly, got {step}"
        )
    return step
