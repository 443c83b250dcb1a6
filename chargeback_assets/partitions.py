"""The one partitions definition every partitioned asset shares: UTC day × tenant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import dagster as dg

from chargeback_assets.config import AppConfig

DATE = "date"
TENANT = "tenant"


def build_partitions(config: AppConfig) -> dg.MultiPartitionsDefinition:
    """Days from the earliest tenant start; one shared daily definition, as single-run backfills need."""
    start = min(tenant.start_date for tenant in config.tenants.values())
    return dg.MultiPartitionsDefinition(
        {
            DATE: dg.DailyPartitionsDefinition(start_date=start.isoformat()),
            TENANT: dg.StaticPartitionsDefinition(sorted(config.tenants)),
        }
    )


def partition_key(day: date, tenant: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE: day.isoformat(), TENANT: tenant})


def days_by_tenant(partitions: dg.MultiPartitionsDefinition, keys: Sequence[str]) -> dict[str, list[date]]:
    """A run's partition keys by tenant, days ascending: a single-run backfill commits per tenant-day."""
    grouped: dict[str, set[date]] = defaultdict(set)
    for key in keys:
        by_dimension = partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        grouped[by_dimension[TENANT]].add(date.fromisoformat(by_dimension[DATE]))
    return {tenant: sorted(days) for tenant, days in sorted(grouped.items())}
