"""Thin Dagster shells around `stages/`: read the run's partitions, call the stage per tenant, report.

Every partitioned asset shares one date × tenant definition and a single-run backfill policy: a backfill of
thirty days for a tenant is one run that fetches each source once and commits per (tenant, day).
"""

from __future__ import annotations

import dagster as dg

from chargeback_assets.assets.allocate import build_allocate_assets
from chargeback_assets.assets.emit import build_emit_assets
from chargeback_assets.assets.gather import build_gather_assets
from chargeback_assets.assets.resolve import build_resolve_assets
from chargeback_assets.config import AppConfig


def build_assets(partitions: dg.MultiPartitionsDefinition, config: AppConfig) -> list[dg.AssetsDefinition]:
    retries = max(tenant.allocation_retry_limit for tenant in config.tenants.values()) - 1
    return [
        *build_gather_assets(partitions),
        *build_resolve_assets(partitions),
        *build_allocate_assets(partitions, retries),
        *build_emit_assets(partitions),
    ]
