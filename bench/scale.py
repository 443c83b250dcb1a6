"""Issue 17: how the backfill's cost grows with the work, as time per tenant-day.

The 30-day backfill of `bench.backfill` (through Dagster, one run, fresh instance and database) at 7, 30 and
90 days of the large organization, and at 30 days with twice its service accounts. Each point is one
backfill on its own sandbox; the figure is seconds per tenant-day, which stays flat when the cost is linear
in days. Starting the sandbox and building the definitions are not timed; every point is reconciled line
by line afterwards, as in `bench.backfill`.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.backfill import backfill, require_reconciled
from bench.harness import timed
from bench.instance import repo_instance
from bench.sandbox import remote_sandbox
from chargeback_assets.definitions import load_definitions
from chargeback_assets.sandbox.generator import SIZES

LARGE_SERVICE_ACCOUNTS = SIZES["large"].service_accounts
POINTS = (
    (7, LARGE_SERVICE_ACCOUNTS),
    (30, LARGE_SERVICE_ACCOUNTS),
    (90, LARGE_SERVICE_ACCOUNTS),
    (30, 2 * LARGE_SERVICE_ACCOUNTS),
)
"""(days, service accounts) of each point of the curve."""


def one_point(days: int, service_accounts: int) -> float:
    """Seconds of one backfill of `days` days of the large organization with `service_accounts`."""
    today = datetime.now(UTC).date()
    last = today - timedelta(days=1)
    first = today - timedelta(days=days)
    with (
        remote_sandbox(today, days + 1, first, service_accounts) as sandbox,
        tempfile.TemporaryDirectory(prefix=f"bench-scale{days}-") as workdir,
    ):
        config_path = sandbox.write_config(Path(workdir), "large")
        defs = load_definitions(str(config_path))
        with repo_instance(workdir) as instance:
            seconds, _ = timed(lambda: backfill(defs, instance, first, last))
        require_reconciled(config_path, first, last)
    return seconds


def run() -> dict[str, Any]:
    per_day = {}
    lines = []
    for days, service_accounts in POINTS:
        seconds = one_point(days, service_accounts)
        per_day[(days, service_accounts)] = seconds / days
        lines.append(
            f"{days:>3} days, {service_accounts:,} service accounts: {seconds:6.1f} s, "
            f"{seconds / days:.3f} s per tenant-day"
        )
    base = per_day[(30, LARGE_SERVICE_ACCOUNTS)]
    return {
        "title": "backfill scale curve (Dagster, large organization, one tenant)",
        "median_s": base * 30,
        "runs": 1,
        "figures": [f"{base:.3f} s per tenant-day at 30 days"],
        "details": [
            *lines,
            f"per tenant-day relative to 30 days: 7 days x{per_day[(7, LARGE_SERVICE_ACCOUNTS)] / base:.2f}, "
            f"90 days x{per_day[(90, LARGE_SERVICE_ACCOUNTS)] / base:.2f}, 2x service accounts "
            f"x{per_day[(30, 2 * LARGE_SERVICE_ACCOUNTS)] / base:.2f}",
        ],
    }
