"""A day's usage per (resource, metric, subject), and the resources whose metrics could not be fetched.

Failures are stored beside the usage because "no usage" and "metrics unreachable" must never be confused:
the calculation sends the cost of a failed resource through the fallback tiers with its own detail code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from chargeback_assets.engine.models import UsageRecord
from chargeback_assets.redaction import scrub
from chargeback_assets.storage.codec import day_text, money_text
from chargeback_assets.storage.database import Source, Transaction, delete_day

UsageByResource = dict[str, dict[str, dict[str, Decimal]]]
"""resource_id -> metric key -> subject -> value."""


def replace_usage_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    records: Sequence[UsageRecord],
    failures: Mapping[str, str],
) -> int:
    """Replace the day's usage and fetch failures; records repeating a key are summed. Returns keys kept.

    A failure's error text is scrubbed of secrets (redaction.py): it quotes what the metrics server said.
    """
    summed: dict[tuple[str, str, str], Decimal] = {}
    for r in records:
        money_text(r.value, f"usage of {r.subject!r} for {r.metric_key} on {r.resource_id}")
        key = (r.resource_id, r.metric_key, r.subject)
        summed[key] = summed.get(key, Decimal(0)) + r.value
    d = day_text(day)
    scope = (ecosystem, tenant_id, d)
    for table in ("usage_metrics", "usage_fetch_failures"):
        delete_day(tx, table, ecosystem, tenant_id, day)
    tx.conn.executemany(
        "INSERT INTO usage_metrics (ecosystem, tenant_id, date, resource_id, metric_key, subject, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*scope, *key, format(value, "f")) for key, value in summed.items()],
    )
    tx.conn.executemany(
        "INSERT INTO usage_fetch_failures (ecosystem, tenant_id, date, resource_id, error) "
        "VALUES (?, ?, ?, ?, ?)",
        [(*scope, resource_id, scrub(error)) for resource_id, error in failures.items()],
    )
    return len(summed)


def usage_counts_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> tuple[int, int]:
    """How many usage rows the day holds, and for how many resources."""
    rows, resources = source.conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT resource_id) FROM usage_metrics "
        "WHERE ecosystem = ? AND tenant_id = ? AND date = ?",
        (ecosystem, tenant_id, day_text(day)),
    ).fetchone()
    return rows, resources


def usage_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> UsageByResource:
    usage: UsageByResource = {}
    for resource_id, metric_key, subject, value in source.conn.execute(
        "SELECT resource_id, metric_key, subject, value FROM usage_metrics "
        "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY resource_id, metric_key, subject",
        (ecosystem, tenant_id, day_text(day)),
    ):
        usage.setdefault(resource_id, {}).setdefault(metric_key, {})[subject] = Decimal(value)
    return usage


def usage_failures_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> dict[str, str]:
    """resource_id -> the error that kept its metrics from being fetched that day."""
    return dict(
        source.conn.execute(
            "SELECT resource_id, error FROM usage_fetch_failures "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY resource_id",
            (ecosystem, tenant_id, day_text(day)),
        )
    )
