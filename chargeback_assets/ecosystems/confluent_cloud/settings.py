"""Validated `plugin_settings` of a Confluent Cloud tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chargeback_assets.ecosystems.prometheus_settings import (
    PrometheusSettings,
    read_metrics_step,
    read_prometheus_settings,
)
from chargeback_assets.settings_reader import Section, defaults, reject_duplicates
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


SERVICE_TYPES = frozenset({"kafka", "schema_registry", "connector", "ksqldb", "flink", "org_wide", "default"})
"""Keys `identity_resolution_overrides` may use for a Confluent Cloud tenant."""


def parse_confluent_cloud_settings(raw: Mapping[str, Any], path: str) -> ConfluentCloudSettings:
    """Validates `plugin_settings` of a Confluent Cloud tenant; `ccloud_api.base_url` may name the sandbox."""
    default = defaults(ConfluentCloudSettings)
    http_default = defaults(HttpSettings)
    with Section(raw, path) as section:
        with section.section("ccloud_api", required=True) as api:
            api_key = api.string("key")
            api_secret = api.secret("secret")
            base_url = api.url("base_url", http_default["base_url"])
        with section.section("http") as http:
            http_settings = HttpSettings(
                base_url=base_url,
                timeout_seconds=http.number("timeout_seconds", http_default["timeout_seconds"], ge=1, le=300),
                max_retries=http.integer("max_retries", http_default["max_retries"], ge=0, le=10),
                min_interval_seconds=http.number(
                    "min_interval_seconds", http_default["min_interval_seconds"], ge=0, le=10
                ),
            )
        with section.section("billing_api") as billing:
            days_per_query = billing.integer("days_per_query", default["days_per_query"], ge=1, le=31)
        metrics = section.optional_section("metrics")
        flink = [(item, _read_flink_region(item)) for item in section.sections("flink")]
        reject_duplicates(((item.at("region_id"), region.region_id) for item, region in flink), "region_id")
        return ConfluentCloudSettings(
            api_key=api_key,
            api_secret=api_secret,
            http=http_settings,
            days_per_query=days_per_query,
            metrics=None if metrics is None else read_prometheus_settings(metrics),
            metrics_step_seconds=read_metrics_step(section, default["metrics_step_seconds"]),
            flink=tuple(region for _, region in flink),
        )


def _read_flink_region(section: Section) -> FlinkRegion:
    with section:
        return FlinkRegion(
            region_id=section.string("region_id"),
            key=section.string("key"),
            secret=section.secret("secret"),
            base_url=section.url("base_url", None),
        )
