"""Emitting 30 days of a large tenant (about 500,000 chargeback rows) to CSV, OpenMetrics and FOCUS.

The rows are synthesized straight into a database file through the storage functions, shaped like the
`large` sandbox organization's allocation (50 clusters with 25 charged principals each over five product
types and both cost types, plus two org-wide lines split over 2,000 service accounts): running the whole
pipeline for 30 large days would measure allocation, not emission. Every service account carries a `team`
tag, so the team rollups are part of the work. Each day also gets the bill its rows allocate, a calculation
id and the reconciliation check's verdict, as the pipeline leaves a day before emission (the emitters publish
only days that reconciled). What is timed is `emit_days` for each emitter type over the 30 days, exactly as
the three emit assets call it.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

from chargeback_assets.config import parse_config
from chargeback_assets.engine.models import (
    BillingLine,
    ChargebackRow,
    CostType,
    Identity,
    Resource,
    day_start,
)
from chargeback_assets.stages.checks import check_reconciliation
from chargeback_assets.stages.emission import emit_days
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import replace_billing_day
from chargeback_assets.storage.chargeback import replace_chargeback_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.inventory import upsert_identities, upsert_resources
from chargeback_assets.storage.pipeline import update_state

ECOSYSTEM, TENANT_ID = "confluent_cloud", "bench-large"
DAYS = 30
CLUSTERS, PRINCIPALS_PER_CLUSTER, SERVICE_ACCOUNTS, TEAMS = 50, 25, 2000, 20
CLUSTER_PRODUCTS = (
    "KAFKA_NUM_CKU",
    "KAFKA_NETWORK_READ",
    "KAFKA_NETWORK_WRITE",
    "KAFKA_STORAGE",
    "KAFKA_PARTITION",
)
ORG_PRODUCTS = ("SUPPORT", "AUDIT_LOG_READ")
FIRST_DAY = date(2026, 1, 1)
TARGET_S, TARGET_RSS_MB = 20.0, 300.0
KINDS = {"csv": "files", "prometheus": "metrics", "focus": "finops"}
"""Emitter type -> the emitter's name."""
RUNS = 3


def _day_rows(day: date, rng: random.Random) -> list[ChargebackRow]:
    rows = []

    def add(resource: str | None, category: str, product: str, identity: str, cost_type: CostType) -> None:
        rows.append(
            ChargebackRow(
                ecosystem=ECOSYSTEM,
                tenant_id=TENANT_ID,
                timestamp=day_start(day),
                resource_id=resource,
                product_category=category,
                product_type=product,
                identity_id=identity,
                cost_type=cost_type,
                amount=Decimal(rng.randrange(1, 2_000_000)).scaleb(-4),
                allocation_method="usage_ratio" if cost_type is CostType.USAGE else "even_split",
                env_id=f"env-{int(resource[4:]) % 10 if resource else 0}",
            )
        )

    for c in range(CLUSTERS):
        principals = rng.sample(range(SERVICE_ACCOUNTS), PRINCIPALS_PER_CLUSTER)
        for product in CLUSTER_PRODUCTS:
            for p in principals:
                for cost_type in CostType:
                    add(f"lkc-{c:03d}", "KAFKA", product, f"sa-{p:04d}", cost_type)
    for product in ORG_PRODUCTS:
        for p in range(SERVICE_ACCOUNTS):
            add(None, "SUPPORT", product, f"sa-{p:04d}", CostType.SHARED)
    return rows


def _bill(rows: list[ChargebackRow]) -> list[BillingLine]:
    """The day's bill those rows allocate: one line per billed (environment, resource, product), summed."""
    totals: dict[tuple[str, str | None, str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row.env_id, row.resource_id, row.product_category, row.product_type] += row.amount
    return [
        BillingLine(
            ECOSYSTEM,
            TENANT_ID,
            rows[0].timestamp,
            resource or "",
            category,
            product,
            Decimal(1),
            total,
            total,
            env_id=env,
        )
        for (env, resource, category, product), total in sorted(totals.items(), key=str)
    ]


def synthesize(workdir: Path) -> tuple[TenantData, list[date]]:
    """A database with 30 days of rows and the inventory, and the tenant config with the three emitters."""
    db_path = workdir / "chargeback.db"
    raw: dict[str, Any] = {
        "storage": {"path": str(db_path)},
        "tenants": {
            "large": {
                "ecosystem": ECOSYSTEM,
                "tenant_id": TENANT_ID,
                "start_date": FIRST_DAY.isoformat(),
                "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
                "emitters": [
                    {"type": kind, "name": name, "params": {"output_dir": str(workdir / kind)}}
                    for kind, name in KINDS.items()
                ],
                "tags": {
                    "identities": {
                        f"sa-{p:04d}": {"team": f"team-{p % TEAMS}"} for p in range(SERVICE_ACCOUNTS)
                    }
                },
            }
        },
    }
    tenant = parse_config(raw, {}).tenants["large"]
    db = ChargebackDatabase.open(db_path)
    rng = random.Random(20260101)
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS)]
    with db.transaction() as tx:
        upsert_identities(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            [
                Identity(ECOSYSTEM, TENANT_ID, f"sa-{p:04d}", "service_account", f"app {p}")
                for p in range(2000)
            ],
            seen,
        )
        upsert_resources(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            [
                Resource(ECOSYSTEM, TENANT_ID, f"lkc-{c:03d}", "kafka_cluster", f"cluster {c}")
                for c in range(50)
            ],
            seen,
        )
    data = TenantData(tenant, db)
    for day in days:
        rows = _day_rows(day, rng)
        with db.transaction() as tx:
            replace_billing_day(tx, ECOSYSTEM, TENANT_ID, day, _bill(rows))
            replace_chargeback_day(tx, ECOSYSTEM, TENANT_ID, day, rows)
            update_state(tx, ECOSYSTEM, TENANT_ID, day, calculation_id=str(uuid.uuid4()))
        if not check_reconciliation(data, day).passed:
            raise RuntimeError(f"the synthesized {day} does not reconcile with its bill")
    return data, days


def run() -> dict[str, Any]:
    """Synthesize once, then emit the 30 days RUNS times (a re-materialized partition is emitted again)."""
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-emit-") as scratch:
        workdir = Path(scratch)
        started = time.perf_counter()
        data, days = synthesize(workdir)
        synthesized_s = time.perf_counter() - started
        now = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), UTC)
        try:
            for _ in range(RUNS):
                for kind in KINDS:
                    started = time.perf_counter()
                    (runs[kind],) = emit_days(data, kind, days, now=now)
                    times[kind].append(time.perf_counter() - started)
        finally:
            data.db.close()
        sizes = {
            kind: sum(p.stat().st_size for p in (workdir / kind).iterdir() if p.is_file()) / 1e6
            for kind in KINDS
        }
    rows = runs["csv"].rows
    total = median(sum(per_run) for per_run in zip(*times.values(), strict=True))
    return {
        "title": f"emit {DAYS} days of a large tenant to CSV + OpenMetrics + FOCUS",
        "median_s": total,
        "runs": RUNS,
        "target_s": TARGET_S,
        "target_rss_mb": TARGET_RSS_MB,
        "figures": [f"{rows:,} rows", f"{rows / total:,.0f} rows/s"],
        "details": [
            *(
                f"{kind}: median {median(times[kind]):.2f} s, {len(runs[kind].emitted)} dates, "
                f"{sizes[kind]:.1f} MB"
                for kind in KINDS
            ),
            "runs (the first emits new days, the others re-emit them unchanged): "
            + "; ".join(" + ".join(f"{kind} {times[kind][n]:.2f} s" for kind in KINDS) for n in range(RUNS)),
            f"setup (synthesized rows written through storage, not timed): {synthesized_s:.1f} s",
        ],
    }


if __name__ == "__main__":
    print(run())
