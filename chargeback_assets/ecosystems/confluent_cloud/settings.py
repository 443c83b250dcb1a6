"""`plugin_settings` of a Confluent Cloud tenant."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Annotated

from pydantic import Field

from chargeback_assets.ecosystems.prometheus_settings import MetricsStep, PrometheusSettings
from chargeback_assets.validation import Integer, Seconds, Secret, Text, Url, settings, unique_by

DEFAULT_BASE_URL = "https://api.confluent.cloud"

SERVICE_TYPES = frozenset({"kafka", "schema_registry", "connector", "ksqldb", "flink", "org_wide", "default"})
"""Keys `identity_resolution_overrides` may use for a Confluent Cloud tenant."""


@settings
class CCloudApi:
    """The Cloud API key; `base_url` may name the sandbox."""

    key: Text
    secret: Secret
    base_url: Url = DEFAULT_BASE_URL


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """What the REST client is built from: the `http` options and where the API is (or the sandbox)."""

    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    max_retries: int = 5
    min_interval_seconds: float = 0.1
    backoff_cap_seconds: float = 60.0


@settings
class HttpOptions:
    """The `http` block: how the REST client talks to Confluent Cloud."""

    timeout_seconds: Annotated[Seconds, Field(ge=1, le=300)] = HttpSettings.timeout_seconds
    max_retries: Annotated[Integer, Field(ge=0, le=10)] = HttpSettings.max_retries
    min_interval_seconds: Annotated[Seconds, Field(ge=0, le=10)] = HttpSettings.min_interval_seconds
    backoff_cap_seconds: Annotated[Seconds, Field(gt=0, le=600)] = HttpSettings.backoff_cap_seconds


@settings
class BillingApi:
    days_per_query: Annotated[Integer, Field(ge=1, le=31)] = 15


@settings
class FlinkRegion:
    """Per-region Flink API key; `base_url` defaults to https://flink.{region}.{cloud}.confluent.cloud."""

    region_id: Text
    key: Text
    secret: Secret
    base_url: Url | None = None


@settings(kw_only=True)
class ConfluentCloudSettings:
    ccloud_api: CCloudApi
    http_options: HttpOptions = Field(default_factory=HttpOptions, alias="http")
    billing_api: BillingApi = field(default_factory=BillingApi)
    metrics: PrometheusSettings | None = None
    metrics_step_seconds: MetricsStep = 3600
    flink: Annotated[tuple[FlinkRegion, ...], unique_by("region_id")] = ()

    @property
    def api_key(self) -> str:
        return self.ccloud_api.key

    @property
    def api_secret(self) -> Secret:
        return self.ccloud_api.secret

    @property
    def days_per_query(self) -> int:
        return self.billing_api.days_per_query

    @property
    def http(self) -> HttpSettings:
        return HttpSettings(base_url=self.ccloud_api.base_url, **dataclasses.asdict(self.http_options))
