"""Topic attribution over 30 days of the `large` sandbox organization (50 clusters, 20 topics each).

The days' bill is gathered first, untimed, into an empty database; then the two topic stages run as the
topic assets run them for a 30-day backfill: `fetch_topic_metrics` once over the 30 days (three range
queries per cluster over HTTP), then `attribute_topics_day` for each day (split and write). Each run starts
from a fresh database; the sandbox (a separate process, `bench.sandbox`) is started once, outside the
timing. The result also checks what it times: every day's topic rows reconcile.
"""

from __future__ import annotations

import copy
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import median, megabytes, thousands, timed
from bench.sandbox import RemoteSandbox, remote_sandbox
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox.tenants import write_config
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.checks import reconcile_topics_day
from chargeback_assets.stages.topics import attribute_topics_day, fetch_topic_metrics

RUNS = 3
DAYS = 30
TENANT = "large"
ORG_DAYS = 35


def one_backfill(
    sandbox: RemoteSandbox, workdir: Path, days: list[date]
) -> tuple[float, float, float, int, int]:
    """Seconds of the metrics stage, the sandbox's CPU seconds within it, seconds of the attribution stage,
    topic rows written, metric records."""
    tenant = copy.deepcopy(sandbox.tenant)
    tenant["plugin_settings"]["topic_attribution"] = {"enabled": True}
    config = write_config(workdir / "chargeback.yaml", {TENANT: tenant}, workdir / "chargeback.db")
    resource = ChargebackResource(config_path=str(config))
    with resource.scope(TENANT) as scope:
        gather_billing(scope, days)
        cpu_before = sandbox.cpu_seconds()
        metrics_s, fetched = timed(lambda: fetch_topic_metrics(scope, days))
        sandbox_cpu_s = sandbox.cpu_seconds() - cpu_before
        attribute_s, attributed = timed(lambda: [attribute_topics_day(scope, day) for day in days])
        failed = [day for day in days if not reconcile_topics_day(scope, day).passed]
    if failed:
        raise RuntimeError(f"topic rows do not reconcile on {failed}")
    rows, records = sum(d.rows for d in attributed), sum(d.records for d in fetched)
    return metrics_s, sandbox_cpu_s, attribute_s, rows, records


def run() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    newest = today - timedelta(days=1)
    days = [newest - timedelta(days=offset) for offset in reversed(range(DAYS))]
    runs: list[tuple[float, float, float]] = []
    with remote_sandbox(today, ORG_DAYS, today - timedelta(days=ORG_DAYS)) as sandbox:
        for attempt in range(RUNS):
            with tempfile.TemporaryDirectory(prefix=f"bench-topics{attempt}-") as workdir:
                metrics_s, sandbox_s, attribute_s, rows, records = one_backfill(sandbox, Path(workdir), days)
            runs.append((metrics_s, sandbox_s, attribute_s))
        server_rss = sandbox.peak_rss_kib()
    return {
        "title": f"topic attribution, large org, {DAYS} days",
        "median_s": median([m + a for m, _, a in runs]),
        "runs": RUNS,
        "figures": [f"{thousands(rows)} topic rows", f"{thousands(records)} topic metric records"],
        "details": [
            f"metrics (median s) {median([m for m, _, _ in runs]):.2f}, of which the simulator's CPU "
            f"{median([c for _, c, _ in runs]):.2f}; attribution+write {median([a for *_, a in runs]):.2f}",
            f"days {days[0]}..{days[-1]}; the sandbox server runs in its own process (peak RSS "
            f"{megabytes(server_rss):,.0f} MB, not counted)",
        ],
    }
