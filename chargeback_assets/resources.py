"""Dagster resources: the project's configuration, its SQLite database and each tenant's ecosystem."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr

from chargeback_assets.config import AppConfig, TenantConfig, load_config
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.logs import configure_logging
from chargeback_assets.runtime import build_runtime
from chargeback_assets.stages.lanes import RunLanes
from chargeback_assets.stages.scope import TenantData, TenantScope
from chargeback_assets.storage.database import ChargebackDatabase, held_open, open_database
from chargeback_assets.storage.inventory import MadeIdentities


@functools.cache
def cached_config(path: str) -> AppConfig:
    """Loaded once per process; applying its logging section once too."""
    config = load_config(path)
    configure_logging(config.logging)
    return config


class ChargebackResource(dg.ConfigurableResource):
    """Opens the database and builds tenant runtimes from the config file named by `config_path`."""

    config_path: str
    _lanes: RunLanes | None = PrivateAttr(default=None)
    _budget: RetryBudget | None = PrivateAttr(default=None)
    _made_identities: MadeIdentities | None = PrivateAttr(default=None)
    _held_open: ChargebackDatabase | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """In a run (not a sensor or schedule tick), prepare the leases its steps take and the identities
        they share (`MadeIdentities`), and hold the database open between its steps (`held_open`)."""
        run, instance = context.run, context.instance
        if run is None:
            return

        def finished(run_id: str) -> bool:
            other = instance.get_run_by_id(run_id) if instance is not None else None
            return other is not None and other.is_finished

        self._lanes = RunLanes(
            self.database, run.run_id, self.config.features.max_parallel_tenants, finished=finished
        )
        self._made_identities = MadeIdentities()
        self._held_open = held_open(self.config.storage)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._budget is not None:
            self._budget.cancel()  # nothing of this run retries past its end
            self._budget = None
        if self._lanes is not None:
            self._lanes.release()
            self._lanes = None
        self._made_identities = None
        if self._held_open is not None:
            self._held_open.close()  # last: the leases above are released through the database
            self._held_open = None

    def hold_tenants(self, tenants: Iterable[str], report: Callable[[str], None]) -> None:
        """Wait until this run alone computes `tenants` and holds a parallel-run slot (stages/lanes.py).

        Outside a run (direct invocation in a test) there is nothing to coordinate with.
        """
        if self._lanes is not None:
            self._lanes.hold(tenants, report)
            if self._budget is None:
                # One retry budget for every source of the run, counted from when it may compute, so
                # that time spent waiting for a lease does not eat it.
                self._budget = RetryBudget(self.config.sources.retry_budget_seconds)

    @property
    def config(self) -> AppConfig:
        return cached_config(self.config_path)

    def tenant(self, name: str) -> TenantConfig:
        try:
            return self.config.tenants[name]
        except KeyError:
            raise dg.Failure(f"tenant {name!r} is not in {self.config_path}") from None

    @contextmanager
    def database(self) -> Iterator[ChargebackDatabase]:
        db = open_database(self.config.storage)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def data(self, tenant_name: str) -> Iterator[TenantData]:
        """A tenant's stored data only: for checks and reports, which call no source."""
        with self.database() as db:
            yield TenantData(self.tenant(tenant_name), db)

    @contextmanager
    def scope(self, tenant_name: str) -> Iterator[TenantScope]:
        """A tenant's runtime (clients, sessions) and the database, closed when the work is done."""
        tenant = self.tenant(tenant_name)
        runtime = build_runtime(tenant, self._budget)
        try:
            with self.database() as db:
                yield TenantScope(tenant, db, runtime, self._made_identities)
        finally:
            runtime.close()
