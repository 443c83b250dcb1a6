"""Issue 3: one day of the `large` sandbox organization end to end over HTTP, without an orchestrator.

Each run starts from an empty database and goes through the stages in pipeline order for the newest day:
billing gather, inventory gather, usage metrics, identity resolution, allocation and write. The timed span
starts when the tenant scope is opened (runtime built, database created and migrated) and ends after the
chargeback write; the sandbox (a separate process, `bench.sandbox`) is started once, outside the timing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import median, megabytes, thousands, timed
from bench.sandbox import RemoteSandbox, remote_sandbox
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.billing import gather_billing
from chargeback_assets.stages.chargeback import calculate_day
from chargeback_assets.stages.inventory import gather_inventory
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.usage import fetch_usage

RUNS = 3
TENANT = "large"
ORG_DAYS = 35

STAGES: tuple[tuple[str, Callable[[TenantScope, date], Any]], ...] = (
    ("billing", lambda scope, day: gather_billing(scope, [day])),
    ("inventory", lambda scope, day: gather_inventory(scope, [day])),
    ("usage", lambda scope, day: fetch_usage(scope, [day])),
    ("resolution", resolve_day),
    ("allocation+write", calculate_day),
)


def one_day(sandbox: RemoteSandbox, workdir: Path, day: date) -> tuple[dict[str, float], int, int]:
    """Seconds per stage (and `total`), requests made, chargeback facts written."""
    resource = ChargebackResource(config_path=str(sandbox.write_config(workdir, TENANT)))
    before = sandbox.requests()
    seconds: dict[str, float] = {}
    written = 0
    with ExitStack() as stack:
        seconds["setup"], scope = timed(lambda: stack.enter_context(resource.scope(TENANT)))
        for name, stage in STAGES:
            seconds[name], outcome = timed(lambda stage=stage: stage(scope, day))
            written = getattr(outcome, "rows", written)
    seconds["total"] = sum(seconds.values())
    return seconds, sandbox.requests() - before, written


def run() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    day = today - timedelta(days=1)
    runs: list[dict[str, float]] = []
    with remote_sandbox(today, ORG_DAYS, today - timedelta(days=ORG_DAYS)) as sandbox:
        for attempt in range(RUNS):
            with tempfile.TemporaryDirectory(prefix=f"bench-day{attempt}-") as workdir:
                seconds, requests, written = one_day(sandbox, Path(workdir), day)
            runs.append(seconds)
        server_rss = sandbox.peak_rss_kib()
    stage_medians = {name: median([r[name] for r in runs]) for name in runs[0]}
    return {
        "title": "sandbox large day",
        "median_s": stage_medians["total"],
        "runs": RUNS,
        "figures": [f"{requests} requests", f"{thousands(written)} rows"],
        "target_s": 5,
        "target_rss_mb": 400,
        "details": [
            "per stage (median s): "
            + ", ".join(f"{name} {value:.2f}" for name, value in stage_medians.items() if name != "total"),
            f"day {day}; the sandbox server runs in its own process (peak RSS "
            f"{megabytes(server_rss):,.0f} MB, not counted)",
        ],
    }
