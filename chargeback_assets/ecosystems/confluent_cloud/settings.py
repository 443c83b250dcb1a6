"""`plugin_settings` of a Confluent Cloud tenant."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from chargeback_assets.ecosystems.prometheus_settings import MetricsStep, PrometheusSettings
from chargeback_assets.validation import Integer, Invalid, Seconds, Secret, Text, Url, settings, unique_by

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


TopicCostMapping = Literal["bytes_ratio", "retained_bytes_ratio", "even_split", "disabled"]
TopicMetric = Literal["topic_bytes_in", "topic_bytes_out", "topic_retained_bytes"]

DEFAULT_TOPIC_COST_MAPPING: Mapping[str, TopicCostMapping] = MappingProxyType(
    {
        "KAFKA_NETWORK_WRITE": "bytes_ratio",
        "KAFKA_NETWORK_READ": "bytes_ratio",
        "KAFKA_NUM_CKU": "bytes_ratio",
        "KAFKA_NUM_CKUS": "bytes_ratio",
        "KAFKA_STORAGE": "retained_bytes_ratio",
        "KAFKA_PARTITION": "even_split",
        "KAFKA_BASE": "even_split",
    }
)
"""How each Kafka cluster line is split over topics unless `cost_mapping_overrides` says otherwise."""

DEFAULT_TOPIC_METRICS: Mapping[TopicMetric, str] = MappingProxyType(
    {
        "topic_bytes_in": "confluent_kafka_server_received_bytes",
        "topic_bytes_out": "confluent_kafka_server_sent_bytes",
        "topic_retained_bytes": "confluent_kafka_server_retained_bytes",
    }
)


def _kafka_line_types(overrides: Mapping[str, TopicCostMapping]) -> Mapping[str, TopicCostMapping]:
    for product_type in overrides:
        if product_type not in DEFAULT_TOPIC_COST_MAPPING:
            known = ", ".join(sorted(DEFAULT_TOPIC_COST_MAPPING))
            raise Invalid(f"not a Kafka cluster line type; known: {known}", product_type, show=False)
    return MappingProxyType(dict(overrides))


def _metric_name(name: str) -> str:
    if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
        raise Invalid("must be a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    return name


def _pattern(pattern: str) -> str:
    fnmatch.translate(pattern)  # any string is a pattern; this only proves it compiles
    return pattern


@settings(kw_only=True)
class TopicAttributionSettings:
    """The optional overlay that splits each Kafka cluster's cost lines over its topics (see the README)."""

    enabled: bool = False
    exclude_topic_patterns: tuple[Annotated[Text, AfterValidator(_pattern)], ...] = (
        "__consumer_offsets",
        "_schemas",
        "_confluent-*",
    )
    """fnmatch patterns of topics never charged (internal topics); their traffic is left out of the ratios."""
    missing_metrics_behavior: Literal["even_split", "skip"] = "even_split"
    cost_mapping_overrides: Annotated[Mapping[str, TopicCostMapping], AfterValidator(_kafka_line_types)] = (
        field(default_factory=lambda: MappingProxyType({}))
    )
    metric_name_overrides: Mapping[TopicMetric, Annotated[Text, AfterValidator(_metric_name)]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def mapping(self, product_type: str) -> TopicCostMapping | None:
        """How lines of `product_type` are split over topics; None for lines that are not a cluster's."""
        return self.cost_mapping_overrides.get(product_type) or DEFAULT_TOPIC_COST_MAPPING.get(product_type)

    def metric(self, key: TopicMetric) -> str:
        return self.metric_name_overrides.get(key) or DEFAULT_TOPIC_METRICS[key]

    def excluded(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.exclude_topic_patterns)


@settings(kw_only=True)
class ConfluentCloudSettings:
    ccloud_api: CCloudApi
    http_options: HttpOptions = Field(default_factory=HttpOptions, alias="http")
    billing_api: BillingApi = field(default_factory=BillingApi)
    metrics: PrometheusSettings | None = None
    metrics_step_seconds: MetricsStep = 3600
    flink: Annotated[tuple[FlinkRegion, ...], unique_by("region_id")] = ()
    topic_attribution: TopicAttributionSettings = field(default_factory=TopicAttributionSettings)

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

    @model_validator(mode="after")
    def _topics_need_metrics(self) -> ConfluentCloudSettings:
        if self.topic_attribution.enabled and self.metrics is None:
            raise Invalid("needs `metrics`: topic bytes come from Prometheus", "topic_attribution", "enabled")
        return self
