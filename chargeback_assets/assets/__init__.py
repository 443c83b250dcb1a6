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
from chargeback_assets.assets.topics import build_topic_assets
from chargeback_assets.config import AppConfig


def build_assets(partitions: dg.MultiPartitionsDefinition, config: AppConfig) -> list[dg.AssetsDefinition]:
    """Every asset, tagged with its stage, owned by `orchestration.asset_owners`, linked to its source.

    The stage tag lets the UI's asset catalog filter one stage across groups; the code reference opens the
    function that computes the asset.
    """
    assets = [
        *build_gather_assets(partitions),
        *build_resolve_assets(partitions),
        *build_allocate_assets(partitions),
        *build_emit_assets(partitions),
        *build_topic_assets(partitions),
    ]
    owners = list(config.orchestration.asset_owners)
    described = dg.map_asset_specs(
        lambda spec: spec.replace_attributes(
            owners=owners or spec.owners,
            tags={**spec.tags, "chargeback/stage": spec.group_name or "", "domain": "finops"},
        ),
        assets,
    )
    return list(dg.with_source_code_references(described))
