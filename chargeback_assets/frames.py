"""A tenant's stored chargeback, bill and topic attribution over a date range as pandas DataFrames.

For notebooks (`with tenant_data("chargeback.yaml", "acme-prod") as data: identity_totals(data, start,
end)`), for downstream Dagster assets (`ChargebackResource.data(tenant)` gives the same `TenantData`) and for
the outputs and reports that are simpler as table operations. Everything is read through the storage
repositories, a day at a time, for the UTC days `start..end` inclusive.

Money stays exact: every amount column (`amount`, `billed`, `total_cost`, `quantity`, `unit_price`...) holds
`decimal.Decimal` objects (dtype `object`), never floats, so sums are exact and add up to the bill:
`df["amount"].sum()` and `df.groupby(...)["amount"].sum()` add Decimals (an empty column sums to the integer
0). Convert with `.astype(float)` only to plot. `date` holds `datetime.date` objects (the UTC day).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from chargeback_assets.config import load_config
from chargeback_assets.emitters.base import TEAM_TAG, UNTAGGED
from chargeback_assets.engine.models import Window, day_start, is_settled
from chargeback_assets.engine.money import ZERO
from chargeback_assets.stages.checks import reconcile_day
from chargeback_assets.stages.emission import RowLabels
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_facts_for_day, unattributed_amounts_for_day
from chargeback_assets.storage.database import open_database
from chargeback_assets.storage.topics import topic_rows_for_day

CHARGEBACK_COLUMNS = (
    "date",
    "tenant_id",
    "ecosystem",
    "env_id",
    "resource_id",
    "resource_name",
    "product_category",
    "product_type",
    "identity_id",
    "identity_name",
    "identity_type",
    "cost_type",
    "amount",
    "allocation_method",
    "allocation_detail",
    "team",
    "tags",
)
"""`chargeback_rows`: the CSV's columns but the per-day ones (`currency` and `settled`, which `tenant_totals`
gives per day, and `restated`), plus `team` (the `team` tag, `UNTAGGED` without one) and `tags` as a dict
(identity tags, overridden by resource tags of the same key)."""
IDENTITY_COLUMNS = ("identity_id", "identity_name", "identity_type", "amount")
TEAM_COLUMNS = ("team", "amount")
TENANT_DAY_COLUMNS = (
    "date",
    "tenant_id",
    "billed",
    "allocated",
    "unallocated",
    "unattributed",
    "currency",
    "settled",
    "mismatched_lines",
)
BILLING_COLUMNS = (
    "date",
    "tenant_id",
    "env_id",
    "resource_id",
    "product_category",
    "product_type",
    "quantity",
    "unit_price",
    "total_cost",
    "currency",
    "granularity",
)
TOPIC_COLUMNS = ("date", "tenant_id", "resource_id", "product_type", "topic", "amount", "currency", "method")


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"the date range {start.isoformat()}..{end.isoformat()} ends before it starts")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


@contextmanager
def tenant_data(config_path: str | Path, tenant: str) -> Iterator[TenantData]:
    """A tenant's stored data from a config file (its `storage` database, SQLite or PostgreSQL), for a
    notebook or script."""
    config = load_config(str(config_path))
    if tenant not in config.tenants:
        raise KeyError(f"tenant {tenant!r} is not in {config_path} (known: {', '.join(config.tenants)})")
    with open_database(config.storage) as db:
        yield TenantData(config.tenants[tenant], db)


MONEY = frozenset(
    {"amount", "billed", "allocated", "unallocated", "unattributed", "quantity", "unit_price", "total_cost"}
)


def frame(records: list[tuple[object, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Records as a DataFrame whose money columns are `object` (Decimals), empty or not."""
    df = pd.DataFrame.from_records(records, columns=list(columns))
    return df.astype(dict.fromkeys(MONEY.intersection(columns), object))


def chargeback_rows(data: TenantData, start: date, end: date) -> pd.DataFrame:
    """Every stored chargeback row of the days, with names, type and tags from the inventory (as emitted)."""
    days = days_between(start, end)
    labels = RowLabels(data, Window(day_start(start), day_start(end + timedelta(days=1))))
    records = []
    for day in days:
        facts = chargeback_facts_for_day(data.db, data.ecosystem, data.tenant_id, day)
        for fact, label in labels.label(facts):
            records.append(
                (
                    day,
                    fact.tenant_id,
                    fact.ecosystem,
                    fact.env_id,
                    fact.resource_id,
                    label.resource_name,
                    fact.product_category,
                    fact.product_type,
                    fact.identity_id,
                    label.identity_name,
                    label.identity_type,
                    fact.cost_type,
                    fact.amount,
                    fact.allocation_method,
                    fact.allocation_detail,
                    label.tags.get(TEAM_TAG, UNTAGGED),
                    dict(label.tags),
                )
            )
    return frame(records, CHARGEBACK_COLUMNS)


def identity_totals(data: TenantData, start: date, end: date, top: int | None = None) -> pd.DataFrame:
    """Chargeback per identity over the days, most expensive first (ties by id); the first `top` if given."""
    rows = chargeback_rows(data, start, end)
    totals = rows.groupby(list(IDENTITY_COLUMNS[:-1]), as_index=False)["amount"].sum()
    ranked = totals.sort_values(["amount", "identity_id"], ascending=[False, True], ignore_index=True)
    return frame(list(ranked.itertuples(index=False))[:top], IDENTITY_COLUMNS)


def team_totals(data: TenantData, start: date, end: date) -> pd.DataFrame:
    """Chargeback per `team` tag over the days (`UNTAGGED`: rows without one), by team name."""
    rows = chargeback_rows(data, start, end)
    return frame(list(rows.groupby("team")["amount"].sum().items()), TEAM_COLUMNS)


def tenant_totals(data: TenantData, start: date, end: date, today: date | None = None) -> pd.DataFrame:
    """Per day: the bill, what was allocated, the part left UNALLOCATED, the part charged to no payer
    (unattributed, UNALLOCATED included; see `PAYER_IDENTITY_TYPES`), the currency, and whether the day is
    settled as of `today` (default: today, UTC), by the rule the outputs use (`is_settled`), and how many
    billing lines the chargeback does not reconcile with."""
    today = today or datetime.now(UTC).date()
    records = []
    for day in days_between(start, end):
        check = reconcile_day(data, day)
        unattributed = sum(unattributed_amounts_for_day(data.db, data.ecosystem, data.tenant_id, day), ZERO)
        settled = is_settled(day, today, data.tenant.settle_days)
        money = (check.billed, check.allocated, check.unallocated, unattributed)
        records.append((day, data.tenant_id, *money, check.currency, settled, len(check.mismatches)))
    return frame(records, TENANT_DAY_COLUMNS)


def billing_lines(data: TenantData, start: date, end: date) -> pd.DataFrame:
    """The stored bill of the days, a row per billing line."""
    records = [
        (
            day,
            line.tenant_id,
            line.env_id,
            line.resource_id,
            line.product_category,
            line.product_type,
            line.quantity,
            line.unit_price,
            line.total_cost,
            line.currency,
            line.granularity,
        )
        for day in days_between(start, end)
        for line in billing_for_day(data.db, data.ecosystem, data.tenant_id, day)
    ]
    return frame(records, BILLING_COLUMNS)


def topic_rows(data: TenantData, start: date, end: date) -> pd.DataFrame:
    """The stored topic attribution of the days: a Kafka cluster's line cost per topic."""
    records = [
        (
            row.day,
            data.tenant_id,
            row.resource_id,
            row.product_type,
            row.topic,
            row.amount,
            row.currency,
            row.method,
        )
        for day in days_between(start, end)
        for row in topic_rows_for_day(data.db, data.ecosystem, data.tenant_id, day)
    ]
    return frame(records, TOPIC_COLUMNS)
