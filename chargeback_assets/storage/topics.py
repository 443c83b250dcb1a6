"""The topic-attribution overlay: each cluster's topic metrics per day, and each cluster line's topic rows.

Both are replaced whole per (tenant, day) inside the caller's transaction, like every other day-partitioned
table. A line with no topic rows (disabled, skipped) is still recorded, with its status and why, so "not
attributed" is never confused with "not calculated".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chargeback_assets.engine.models import UsageRecord
from chargeback_assets.engine.topics import ClusterTopics, LineAttribution
from chargeback_assets.redaction import scrub
from chargeback_assets.storage.codec import day_text, money_text, parse_day
from chargeback_assets.storage.database import Source, Transaction, delete_day


def replace_topic_metrics_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    records: Sequence[UsageRecord],
    failures: Mapping[str, str],
) -> int:
    """Replace the day's topic metrics (a record's subject is the topic) and the clusters that failed."""
    summed: dict[tuple[str, str, str], Decimal] = {}
    for r in records:
        money_text(r.value, f"{r.metric_key} of topic {r.subject!r} on {r.resource_id}")
        key = (r.resource_id, r.metric_key, r.subject)
        summed[key] = summed.get(key, Decimal(0)) + r.value
    scope = (ecosystem, tenant_id, day_text(day))
    for table in ("topic_metrics", "topic_metrics_failures"):
        delete_day(tx, table, ecosystem, tenant_id, day)
    tx.conn.executemany(
        "INSERT INTO topic_metrics (ecosystem, tenant_id, date, resource_id, metric_key, topic, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*scope, *key, format(value, "f")) for key, value in sorted(summed.items())],
    )
    tx.conn.executemany(
        "INSERT INTO topic_metrics_failures (ecosystem, tenant_id, date, resource_id, error) "
        "VALUES (?, ?, ?, ?, ?)",
        [(*scope, resource_id, scrub(error)) for resource_id, error in sorted(failures.items())],
    )
    return len(summed)


def topic_metrics_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date
) -> dict[str, ClusterTopics]:
    """cluster id -> its topic metrics that day (clusters whose fetch failed are flagged, maybe empty)."""
    params = (ecosystem, tenant_id, day_text(day))
    metrics: dict[str, dict[str, dict[str, Decimal]]] = {}
    for resource_id, key, topic, value in source.conn.execute(
        "SELECT resource_id, metric_key, topic, value FROM topic_metrics "
        "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY resource_id, metric_key, topic",
        params,
    ):
        metrics.setdefault(resource_id, {}).setdefault(key, {})[topic] = Decimal(value)
    failed = {
        resource_id
        for (resource_id,) in source.conn.execute(
            "SELECT resource_id FROM topic_metrics_failures "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ?",
            params,
        )
    }
    return {
        resource_id: ClusterTopics(metrics.get(resource_id, {}), resource_id in failed)
        for resource_id in sorted(set(metrics) | failed)
    }


def topic_metric_failures(source: Source, ecosystem: str, tenant_id: str, day: date) -> dict[str, str]:
    return dict(
        source.conn.execute(
            "SELECT resource_id, error FROM topic_metrics_failures "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY resource_id",
            (ecosystem, tenant_id, day_text(day)),
        )
    )


def replace_topic_attribution_day(
    tx: Transaction, ecosystem: str, tenant_id: str, day: date, lines: Sequence[LineAttribution]
) -> int:
    """Replace the day's topic attribution; returns the number of topic rows written."""
    scope = (ecosystem, tenant_id, day_text(day))
    for table in ("topic_attribution_lines", "topic_attribution_facts"):
        delete_day(tx, table, ecosystem, tenant_id, day)
    tx.conn.executemany(
        "INSERT INTO topic_attribution_lines (ecosystem, tenant_id, date, line_id, resource_id, "
        "product_type, total_cost, currency, mapping, status, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                *scope,
                a.line_id,
                a.line.resource_id,
                a.line.product_type,
                money_text(a.line.total_cost, f"{a.line.product_type} on {a.line.resource_id}"),
                a.line.currency,
                a.mapping,
                a.status.value,
                a.detail,
            )
            for a in lines
        ],
    )
    facts = [
        (*scope, a.line_id, row.topic, money_text(row.amount, f"topic {row.topic!r}"), row.method, row.detail)
        for a in lines
        for row in a.rows
    ]
    tx.conn.executemany(
        "INSERT INTO topic_attribution_facts (ecosystem, tenant_id, date, line_id, topic, amount, method, "
        "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        facts,
    )
    return len(facts)


@dataclass(frozen=True, slots=True)
class StoredTopicLine:
    line_id: str
    resource_id: str
    product_type: str
    total_cost: Decimal
    currency: str
    mapping: str
    status: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class StoredTopicRow:
    day: date
    line_id: str
    resource_id: str
    product_type: str
    topic: str
    amount: Decimal
    currency: str
    method: str
    detail: str | None


def topic_lines_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[StoredTopicLine]:
    return [
        StoredTopicLine(lid, rid, pt, Decimal(total), currency, mapping, status, detail)
        for lid, rid, pt, total, currency, mapping, status, detail in source.conn.execute(
            "SELECT line_id, resource_id, product_type, total_cost, currency, mapping, status, detail "
            "FROM topic_attribution_lines WHERE ecosystem = ? AND tenant_id = ? AND date = ? "
            "ORDER BY line_id",
            (ecosystem, tenant_id, day_text(day)),
        )
    ]


def topic_rows_for_day(source: Source, ecosystem: str, tenant_id: str, day: date) -> list[StoredTopicRow]:
    """The day's topic rows with their line's cluster and product type, in line and topic order."""
    return [
        StoredTopicRow(parse_day(d), lid, rid, pt, topic, Decimal(amount), currency, method, detail)
        for d, lid, rid, pt, topic, amount, currency, method, detail in source.conn.execute(
            "SELECT f.date, f.line_id, l.resource_id, l.product_type, f.topic, f.amount, l.currency, "
            "f.method, f.detail FROM topic_attribution_facts f JOIN topic_attribution_lines l "
            "ON l.ecosystem = f.ecosystem AND l.tenant_id = f.tenant_id AND l.date = f.date "
            "AND l.line_id = f.line_id WHERE f.ecosystem = ? AND f.tenant_id = ? AND f.date = ? "
            "ORDER BY l.resource_id, l.product_type, f.line_id, f.topic",
            (ecosystem, tenant_id, day_text(day)),
        )
    ]
