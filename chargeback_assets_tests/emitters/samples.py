"""Chargeback rows for emitter tests, built field by field so each test states what matters to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from chargeback_assets.emitters.base import EmitRow, Labels, PeriodFacts
from chargeback_assets.engine.models import ChargebackRow, CostType, day_start

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
