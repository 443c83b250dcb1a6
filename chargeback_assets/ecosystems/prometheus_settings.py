"""Settings of a Prometheus-compatible metrics endpoint, shared by every ecosystem."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from chargeback_assets.validation import Integer, Invalid, Seconds, Secret, Text, Url, only_when, settings

AuthType = Literal["none", "basic", "bearer"]
SECONDS_PER_DAY = 86_400
_CREDENTIALS_BY_AUTH_TYPE: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("bearer_token",),
}


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

    @model_validator(mode="after")
    def _credentials_match_auth_type(self) -> PrometheusSettings:
        wanted = _CREDENTIALS_BY_AUTH_TYPE[self.auth_type]
        for name in ("username", "password", "bearer_token"):
            only_when(name in wanted, f"auth_type is {self.auth_type}", **{name: getattr(self, name)})
        return self


def _tiles_a_day(step: int) -> int:
    """Day windows are cut at UTC midnight, so a step must tile a day exactly."""
    if SECONDS_PER_DAY % step:
        raise Invalid(f"must divide a day ({SECONDS_PER_DAY} s) evenly")
    return step


MetricsStep = Annotated[Integer, Field(gt=0), AfterValidator(_tiles_a_day)]
"""`metrics_step_seconds`: > 0 and divides 86400."""
