"""The one place that wires the graph: config -> partitions -> assets, checks, schedule, sensors.

`defs` is built from the config file named by $CHARGEBACK_CONFIG (default chargeback.yaml), so the tenant
list, the partitions and the schedule follow the config after a code-location reload.
"""

from __future__ import annotations

import os

import dagster as dg

from chargeback_assets.assets import build_assets
from chargeback_assets.checks import build_checks
from chargeback_assets.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_FILE, load_config
from chargeback_assets.constants import ALLOCATE, EMIT, GATHER, RESOLVE, TOPICS
from chargeback_assets.partitions import build_partitions
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.schedules import build_daily_schedule
from chargeback_assets.sensors import (
    build_audit_sensors,
    build_billing_change_sensor,
    build_continuation_sensor,
    build_emission_retry_sensor,
)
from chargeback_assets.stages.bulk import freeze_loaded_objects

CHARGEBACK_JOB = "chargeback_job"


def build_definitions(config_path: str) -> dg.Definitions:
    config = load_config(config_path)
    partitions = build_partitions(config)
    pipeline = dg.AssetSelection.groups(GATHER, RESOLVE, ALLOCATE, EMIT, TOPICS)
    assets = build_assets(partitions, config)
    checks = build_checks(partitions)
    job = dg.define_asset_job(CHARGEBACK_JOB, selection=pipeline)
    bill_stages = dg.AssetSelection.assets("billing_lines").downstream().resolve(assets)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[job],
        schedules=[build_daily_schedule(config, pipeline)],
        sensors=[
            build_billing_change_sensor(config, pipeline, sorted(bill_stages)),
            build_continuation_sensor(
                partitions,
                job,
                [key for asset in assets for key in asset.keys],
                [key for check in checks for key in check.check_keys],
            ),
            build_emission_retry_sensor(config, job),
            *build_audit_sensors(partitions),
        ],
        resources={"chargeback": ChargebackResource(config_path=os.path.abspath(config_path))},
        executor=dg.in_process_executor,
    )


def load_definitions(config_path: str) -> dg.Definitions:
    """The definitions as a process that serves or runs them loads them: what is loaded by then is frozen out
    of later garbage collections (`freeze_loaded_objects`). Tests build them with `build_definitions`."""
    definitions = build_definitions(config_path)
    freeze_loaded_objects()
    return definitions


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by Dagster when the code location loads, so importing this module needs no config file."""
    return load_definitions(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)
