"""A running chargeback graph for tests: two sandbox tenants, a config file, a database, the definitions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from chargeback_assets.constants import TENANT_TAG
from chargeback_assets.definitions import CHARGEBACK_JOB, build_definitions
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config

TENANT_SEEDS = {"acme-prod": 7, "acme-staging": 11}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Graph:
    workdir: Path
    config_path: Path
    db_path: Path
    sandboxes: dict[str, SandboxServer]
    newest: date
    _defs: dg.Definitions | None = field(default=None, repr=False)

    @property
    def resource(self) -> ChargebackResource:
        return ChargebackResource(config_path=str(self.config_path))

    @property
    def defs(self) -> dg.Definitions:
        if self._defs is None:
            self._defs = build_definitions(str(self.config_path))
        return self._defs

    def run(
        self,
        tenant: str,
        first: date,
        last: date | None = None,
        *,
        instance: dg.DagsterInstance,
        raise_on_error: bool = True,
        **kwargs: Any,
    ) -> dg.ExecuteInProcessResult:
        """Materialize `first..last` of one tenant in one run, as a single-run backfill does."""
        last = last or first
        job = self.defs.resolve_job_def(CHARGEBACK_JOB)
        tags = {TENANT_TAG: tenant}
        if first == last:
            kwargs["partition_key"] = f"{first.isoformat()}|{tenant}"
        else:
            tags["dagster/asset_partition_range_start"] = f"{first.isoformat()}|{tenant}"
            tags["dagster/asset_partition_range_end"] = f"{last.isoformat()}|{tenant}"
        return job.execute_in_process(
            instance=instance, tags=tags, run_config=QUIET, raise_on_error=raise_on_error, **kwargs
        )

    def run_end_context(
        self, instance: dg.DagsterInstance, run: dg.DagsterRun, sensor_name: str
    ) -> dg.RunStatusSensorContext:
        """What the daemon hands a run-status sensor about a run that ended."""
        ends = {dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE}
        [end] = instance.all_logs(run.run_id, of_type=ends)
        return dg.build_run_status_sensor_context(
            sensor_name=sensor_name,
            dagster_event=end.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"chargeback": self.resource},
        )

    def audit(self, instance: dg.DagsterInstance, run_id: str) -> None:
        """Evaluate the run-audit sensor on a finished run, as the daemon would: it writes `pipeline_runs`."""
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.is_finished, f"run {run_id} has not finished"
        failed = run.status == dg.DagsterRunStatus.FAILURE
        name = "run_audit_failure" if failed else "run_audit_success"
        with self.run_end_context(instance, run, name) as context:
            self.defs.resolve_sensor_def(name)(context.for_run_failure() if failed else context)

    def check(
        self, asset: str, name: str, tenant: str, day: date, *, instance: dg.DagsterInstance
    ) -> dg.AssetCheckEvaluation:
        """Evaluate one asset check on one partition in a run of its own, as the UI's Execute does."""
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        job = self.defs.resolve_job_def(CHARGEBACK_JOB).get_subset(
            asset_selection=set(), asset_check_selection={key}
        )
        result = job.execute_in_process(
            instance=instance,
            partition_key=f"{day.isoformat()}|{tenant}",
            tags={TENANT_TAG: tenant},
            run_config=QUIET,
        )
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation


class SensorTicks:
    """Evaluates the billing-change sensor tick after tick, carrying its cursor like the daemon does."""

    def __init__(self, graph: Graph, instance: dg.DagsterInstance) -> None:
        self.graph, self.instance = graph, instance
        self.cursor: str | None = None
        self.requests: list[dg.RunRequest] = []
        self.skipped: str | None = None
        self.sensor = graph.defs.resolve_sensor_def("billing_change_sensor")

    def tick(self) -> list[str]:
        """The partitions this tick requests; `requests` and `skipped` keep the rest of its result."""
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"chargeback": self.graph.resource},
            definitions=self.graph.defs,
        ) as context:
            result = self.sensor(context)
        self.cursor = result.cursor
        self.requests = list(result.run_requests or ())
        self.skipped = result.skip_reason.skip_message if result.skip_reason else None
        return sorted(request.partition_key for request in self.requests)


@contextmanager
def running_graph(
    workdir: Path,
    *,
    days: int = 35,
    tenant_settings: Mapping[str, Mapping[str, Any]] | None = None,
    size: str = "small",
    end_date: date | None = None,
    sandbox_settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Graph]:
    """Two sandbox organizations (acme-prod, acme-staging) covering `days` days up to yesterday, or up to the
    day before `end_date` (an organization whose history lies in the past, as seen by a later clock).

    `tenant_settings` adds to a tenant's config (`sandbox_tenant`); `sandbox_settings` to its sandbox server
    (`SandboxServer`: its API key and secret, Prometheus credentials), which the tenant's config then uses.
    """
    end = end_date or datetime.now(UTC).date()
    start = end - timedelta(days=days)
    with ExitStack() as stack:
        servers, tenants = {}, {}
        for name, seed in TENANT_SEEDS.items():
            org = generate_org(size, seed=seed, end_date=end, days=days)
            server = stack.enter_context(SandboxServer(org, **(sandbox_settings or {}).get(name, {})))
            servers[name] = server
            extra = dict((tenant_settings or {}).get(name, {}))
            tenants[name] = sandbox_tenant(org, server, tenant_id=name, start_date=start, **extra)
        db_path = workdir / "chargeback.db"
        config_path = write_config(workdir / "chargeback.yaml", tenants, db_path)
        yield Graph(workdir, config_path, db_path, servers, end - timedelta(days=1))
