"""Topic attribution output: one CSV file per tenant and day, `topic_attr_{tenant_id}_{date}.csv`.

Written into the output directory of each of the tenant's csv emitters, beside its chargeback files (the
name the reference gives these files). Columns: `TOPIC_COLUMNS`; one row per (cluster line, topic), amounts
exact decimal text in `currency`, `settled` true once the day is past the tenant's
`settle_days`, cells a spreadsheet would run as a formula neutralized as in the chargeback CSV. The
OpenMetrics series (`chargeback_topic_amount`) are written by the Prometheus emitter (emitters/prometheus.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from chargeback_assets.emitters.base import flag_text, inside, money_text, remove_output, write_atomically
from chargeback_assets.emitters.csv import neutralize, write_table

TOPIC_COLUMNS = (
    "date",
    "tenant_id",
    "resource_id",
    "product_type",
    "topic",
    "amount",
    "currency",
    "method",
    "detail",
    "settled",
)
TOPIC_FILENAME = "topic_attr_{tenant_id}_{date}.csv"


class TopicCharge(Protocol):
    """What the topic outputs read of a topic row (storage's `StoredTopicRow` has these fields)."""

    @property
    def resource_id(self) -> str: ...
    @property
    def product_type(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def detail(self) -> str | None: ...


def topic_csv_path(output_dir: Path, tenant_id: str, day: date) -> Path:
    return inside(output_dir, TOPIC_FILENAME.format(tenant_id=tenant_id, date=day.isoformat()), "topic CSV")


def write_topic_csv(
    output_dir: Path, tenant_id: str, day: date, rows: Sequence[TopicCharge], settled: bool
) -> str:
    """Replace the day's topic CSV (atomically); returns its path. `settled`: whether the day is settled."""
    path = topic_csv_path(output_dir, tenant_id, day)
    tenant, text = neutralize(tenant_id), day.isoformat()
    cells = [
        (
            text,
            tenant,
            neutralize(r.resource_id),
            neutralize(r.product_type),
            neutralize(r.topic),
            money_text(r.amount),
            neutralize(r.currency),
            neutralize(r.method),
            neutralize(r.detail or ""),
            flag_text(settled),
        )
        for r in rows
    ]
    write_atomically(path, lambda out: write_table(out, TOPIC_COLUMNS, cells))
    return str(path)


def remove_topic_csv(output_dir: Path, tenant_id: str, day: date) -> list[str]:
    path = topic_csv_path(output_dir, tenant_id, day)
    return [str(path)] if remove_output(path) else []
