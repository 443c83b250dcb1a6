"""Validated `plugin_settings` of a Confluent Cloud tenant."""

from __future__ import annotations

from dataclasses import dataclass, field

from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.validation import Secret

DEFAULT_BASE_URL = "https://api.confluent.cloud"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How the REST client talks to Confluent Cloud (or to the sandbox, through `base_url`)."""

    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    max_retries: int = 5
    min_interval_seconds: float = 0.1
    backoff_cap_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class FlinkRegion:
    """Per-region Flink API key; `base_url` defaults to https://flink.{region}.{cloud}.confluent.cloud."""

    region_id: str
    key: str
    secret: Secret
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class ConfluentCloudSettings:
    api_key: str
    api_secret: Secret
    http: HttpSettings = field(default_factory=HttpSettings)
    days_per_query: int = 15
    metrics: PrometheusSettings | None = None
    metrics_step_seconds: int = 3600
    flink: tuple[FlinkRegion, ...] = ()
