"""A few days of the demo's two tenants materialized through the real graph, for the DataFrame API and the
Grafana dashboard tests: the demo's emitters (CSV and OpenMetrics), topic attribution on the demo's topic
tenant, and a `team` tag on some service accounts of each tenant (set as the tags command would), so every
kind of series has data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from chargeback_assets.demo import TOPIC_TENANT, emitters_for
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.tags import EntityTag, set_tag
from chargeback_assets_tests.graph import TENANT_SEEDS, Graph, running_graph

TEAMS = ("payments", "search")
SETTLE_DAYS = 2
"""So that of three days up to yesterday the oldest is settled and the two newer are provisional."""


@dataclass(frozen=True)
class DemoHistory:
    graph: Graph
    days: list[date]
    """The materialized days, oldest first."""
    outputs: Path

    def openmetrics(self, tenant: str) -> Path:
        return self.outputs / "prometheus" / f"{tenant}.om"


@contextmanager
def demo_history(workdir: Path, days: int = 3) -> Iterator[DemoHistory]:
    outputs = workdir / "outputs"
    settings = {
        name: {
            "emitters": emitters_for(outputs),
            "settle_days": SETTLE_DAYS,
            **({"topic_attribution": {"enabled": True}} if name == TOPIC_TENANT else {}),
        }
        for name in TENANT_SEEDS
    }
    with running_graph(workdir, days=days + 1, tenant_settings=settings) as graph:
        materialized = [graph.newest - timedelta(days=offset) for offset in reversed(range(days))]
        with ChargebackDatabase.open(graph.db_path) as db, db.transaction() as tx:
            for tenant in TENANT_SEEDS:
                accounts = sorted(a["id"] for a in graph.sandboxes[tenant].org.objects["service_accounts"])
                for n, account in enumerate(accounts[:4]):
                    tag = EntityTag(
                        "confluent_cloud",
                        tenant,
                        "identity",
                        account,
                        "team",
                        TEAMS[n % 2],
                        "test",
                        datetime.now(UTC),
                    )
                    set_tag(tx, tag)
        with dg.instance_for_test() as instance:
            for tenant in TENANT_SEEDS:
                result = graph.run(tenant, materialized[0], materialized[-1], instance=instance)
                assert result.success, tenant
        yield DemoHistory(graph, materialized, outputs)
