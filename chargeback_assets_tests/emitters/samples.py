"""Chargeback rows for emitter tests, built field by field so each test states what matters to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from chargeback_assets.emitters.base import EmitRow, Labels, PeriodFacts
from chargeback_assets.emitters.prometheus import PrometheusEmitter
from chargeback_assets.engine.models import ChargebackRow, CostType, day_start
from chargeback_assets.storage.topics import StoredTopicRow

HOSTILE = ' =cmd|"/c calc"!A0\r\n;team=x,\t"q"\\ \x00\x1b[31m\x85\u2028é'
"""A display name from a hostile or careless owner: a formula after a blank, CR LF, the tag and CSV
delimiters, quotes, a backslash, NUL, an ANSI escape, a C1 control, a Unicode line separator."""
HOSTILE_LABEL = ' =cmd|\\"/c calc\\"!A0\ufffd\\n;team=x,\ufffd\\"q\\"\\\\ \ufffd\ufffd[31m\ufffd\u2028é'
"""`HOSTILE` as it appears between the quotes of a label value: `\\`, `"` and line feed escaped, every other
control character replaced by U+FFFD."""
HOSTILE_AS_READ = ' =cmd|"/c calc"!A0\ufffd\n;team=x,\ufffd"q"\\ \ufffd\ufffd[31m\ufffd\u2028é'
"""The label value a Prometheus reader gets back from `HOSTILE_LABEL`."""


def emit_row(
    day: date,
    identity_id: str,
    amount: str,
    *,
    resource_id: str | None = "lkc-1",
    product_type: str = "KAFKA_NUM_CKU",
    cost_type: CostType = CostType.USAGE,
    allocation_method: str | None = "usage_ratio",
    allocation_detail: str | None = None,
    product_category: str = "KAFKA",
    identity_name: str = "",
    identity_type: str = "service_account",
    resource_name: str = "orders cluster",
    tags: Mapping[str, str] | None = None,
    tenant_id: str = "t1",
) -> EmitRow:
    row = ChargebackRow(
        ecosystem="confluent_cloud",
        tenant_id=tenant_id,
        timestamp=day_start(day),
        resource_id=resource_id,
        product_category=product_category,
        product_type=product_type,
        identity_id=identity_id,
        cost_type=cost_type,
        amount=Decimal(amount),
        allocation_method=allocation_method,
        allocation_detail=allocation_detail,
        env_id="env-1",
    )
    return (
        row,
        Labels(
            resource_name=resource_name,
            identity_name=identity_name or identity_id.upper(),
            identity_type=identity_type,
            tags=dict(tags or {}),
        ),
    )


def period_facts(
    day: date, *, currency: str = "USD", settled: bool = True, restated: bool = False
) -> PeriodFacts:
    """What the emission stage tells an emitter of a one-day period, settled unless a test says otherwise."""
    return PeriodFacts(end=day + timedelta(days=1), currency=currency, settled=settled, restated=restated)


def emit_varied(emitter: PrometheusEmitter) -> None:
    """Two days of every kind of series (tags, teams, both cost types, an org-wide row, hostile and quoted
    names, amounts past float precision, topics; a settled day and a provisional one) through `emitter`, then
    publish: the fixed input of the comparison with the file the hand-written renderer wrote
    (data/varied.om)."""
    days = (date(2026, 3, 14), date(2026, 3, 15))
    for n, day in enumerate(days):
        facts = period_facts(day, settled=n == 0)
        emitter.emit(
            "t1",
            day,
            [
                emit_row(day, "sa-1", "1.5000", tags={"team": "pay", "cost.center": '4"2\\'}),
                emit_row(day, "sa-1", "0.2500", product_category="X", tags={"team": "pay"}),
                emit_row(
                    day, "sa-2", "123456789.123456789", cost_type=CostType.SHARED, identity_name=HOSTILE
                ),
                emit_row(day, "sa-3", f"0.000{n + 1}", resource_id=None, product_type="SUPPORT"),
                emit_row(day, "UNALLOCATED", "2.5", allocation_method=None, identity_type="sentinel"),
                emit_row(day, "u-1", "7", identity_name='a "quoted"\\ name\nx', identity_type="user"),
            ],
            facts,
        )
        topics = [
            StoredTopicRow(day, "l1", "lkc-1", "KAFKA_STORAGE", topic, Decimal(amount), "USD", "bytes", None)
            for topic, amount in (("orders", "0.75"), ("pay\tments", "0.25"), ("orders", f"0.{n + 1}"))
        ]
        emitter.emit_topics("t1", "confluent_cloud", day, topics, facts)
    emitter.publish("t1")
