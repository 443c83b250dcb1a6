"""Settings of a Prometheus-compatible metrics endpoint, shared by every ecosystem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chargeback_assets.validation import Secret

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
