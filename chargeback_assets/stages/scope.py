"""What every stage works within: one tenant, its running ecosystem and the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from chargeback_assets.config import TenantConfig
from chargeback_assets.ecosystems.base import EcosystemRuntime
from chargeback_assets.redaction import scrub
from chargeback_assets.stages.views import InventoryViews
from chargeback_assets.storage.chargeback import KnownDimensions
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.inventory import MadeIdentities


class StageError(RuntimeError):
    """A stage failed for a tenant and some days; the message names tenant, dates and source, never a secret
    (it is scrubbed, as it quotes the cause's text)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


@dataclass(slots=True)
class TenantData:
    """A tenant's stored data: enough for reading and checking, without any source."""

    tenant: TenantConfig
    db: ChargebackDatabase

    @property
    def ecosystem(self) -> str:
        return self.tenant.ecosystem

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    def fail(self, source: str, days: Iterable[date], cause: object) -> StageError:
        return StageError(f"tenant {self.tenant.name}, {describe_days(days)}: {source} failed: {cause}")


@dataclass(slots=True)
class TenantScope(TenantData):
    """A tenant's data plus its running ecosystem (sources, handlers), as the gather stages need.

    A scope lives for one step of one tenant; `inventory_views` reads the stored inventory the first time a
    stage asks and serves every later day of the step from it, and `known_dimensions` holds the chargeback
    dimension ids its days have written. `made_identities`, kept by the run, spares the read remaking the
    identities an earlier step of the run made from the same rows.
    """

    runtime: EcosystemRuntime
    made_identities: MadeIdentities | None = None
    _views: InventoryViews | None = field(default=None, init=False, repr=False)
    known_dimensions: KnownDimensions = field(default_factory=KnownDimensions, init=False, repr=False)

    @property
    def inventory_views(self) -> InventoryViews:
        if self._views is None:
            self._views = InventoryViews(self)
        return self._views


def describe_days(days: Iterable[date]) -> str:
    ordered = sorted(set(days))
    if not ordered:
        return "no dates"
    if len(ordered) == 1:
        return f"date {ordered[0].isoformat()}"
    return f"dates {ordered[0].isoformat()}..{ordered[-1].isoformat()} ({len(ordered)} days)"
