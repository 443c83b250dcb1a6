"""chargeback-assets configuration for tenants served by sandboxes: what the demo and the tests run on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from chargeback_assets.sandbox.organization import Organization
from chargeback_assets.sandbox.server import SandboxServer


def sandbox_tenant(
    org: Organization,
    server: SandboxServer,
    *,
    tenant_id: str,
    start_date: date,
    emitters: Sequence[Mapping[str, Any]] = (),
    http: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    topic_attribution: Mapping[str, Any] | None = None,
    **tenant_settings: Any,
) -> dict[str, Any]:
    """A confluent_cloud tenant whose every endpoint (REST, Flink regions, Prometheus) is the sandbox.

    `http` and `metrics` override the REST client and Prometheus settings (by default the only change is no
    pause between requests); `topic_attribution`, when given, is the tenant's topic overlay settings.
    """
    regions = sorted({pool["spec"]["region"] for pool in org.objects.get("compute_pools", [])})
    return {
        "ecosystem": "confluent_cloud",
        "tenant_id": tenant_id,
        "start_date": start_date.isoformat(),
        **tenant_settings,
        "plugin_settings": {
            "ccloud_api": {"key": server.api_key, "secret": server.api_secret, "base_url": server.url},
            "http": {"min_interval_seconds": 0, **(http or {})},
            "metrics": {"type": "prometheus", "url": server.url, **(metrics or {})},
            "flink": [
                {
                    "region_id": region,
                    "key": server.api_key,
                    "secret": server.api_secret,
                    "base_url": server.url,
                }
                for region in regions
            ],
            **({"topic_attribution": dict(topic_attribution)} if topic_attribution is not None else {}),
        },
        "emitters": [dict(e) for e in emitters],
    }


def write_config(
    path: Path,
    tenants: Mapping[str, Mapping[str, Any]],
    storage: Path | Mapping[str, str],
    max_parallel_tenants: int = 4,
) -> Path:
    """A config file of `tenants`; `storage` is the SQLite file, or the `storage` section (a PostgreSQL
    `url`)."""
    document = {
        "storage": {"path": str(storage)} if isinstance(storage, Path) else dict(storage),
        "features": {"max_parallel_tenants": max_parallel_tenants},
        "tenants": {name: dict(tenant) for name, tenant in tenants.items()},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
