"""Settings of a Prometheus-compatible metrics endpoint, shared by every ecosystem."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chargeback_assets.validation import Integer, Seconds, Secret, Text, Url, checked, only_when, settings

AuthType = Literal["none", "basic", "bearer"]
SECONDS_PER_DAY = 86_400


@settings
class PrometheusSettings:
    """A `metrics` block; the credentials given must be exactly those its `auth_type` uses."""

    url: Url
    auth_type: AuthType = "none"
    username: Text | None = None
    password: Secret | None = None
    bearer_token: Secret | None = None
    timeout_seconds: Annotated[Seconds, Field(gt=0, le=300)] = 30.0
    max_attempts: Annotated[Integer, Field(ge=1, le=10)] = 4
    type: Literal["prometheus"] = "prometheus"

    _credentials = only_when("auth_type", username=("basic",), password=("basic",), bearer_token=("bearer",))


def _tiles_a_day(step: int) -> str | None:
    """Day windows are cut at UTC midnight, so a step must tile a day exactly."""
    return f"must divide a day ({SECONDS_PER_DAY} s) evenly" if SECONDS_PER_DAY % step else None


MetricsStep = Annotated[Integer, Field(gt=0), checked(_tiles_a_day)]
"""`metrics_step_seconds`: > 0 and divides 86400."""
