"""What a handler may look up while resolving one billing line: the tenant's inventory as of a window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chargeback_assets.engine.models import (
    SYSTEM_IDENTITY_TYPE,
    Identity,
    IdentitySet,
    Resource,
    Window,
)


@dataclass(slots=True)
class InventoryView:
    """Resources and identities whose lifetime overlaps one window, indexed for resolution.

    Built once per (tenant, window) and shared by every line of that window, so resolution never touches
    storage. `all_resources` holds every known resource regardless of lifetime: some lookups (a connector's
    credentials, a ksqlDB owner) are not temporal in the reference behaviour.
    """

    window: Window
    resources: Mapping[str, Resource]
    identities: IdentitySet
    all_resources: Mapping[str, Resource] = field(default_factory=dict)
    _api_keys_by_resource: dict[str, list[Identity]] = field(default_factory=dict, init=False)
    _tenant_period: IdentitySet | None = field(default=None, init=False)

    @classmethod
    def build(
        cls, window: Window, resources: Iterable[Resource], identities: Iterable[Identity]
    ) -> InventoryView:
        everything = {r.resource_id: r for r in resources}
        overlapping = {rid: r for rid, r in everything.items() if r.overlaps(window)}
        ids = IdentitySet(i for i in identities if i.overlaps(window))
        view = cls(window=window, resources=overlapping, identities=ids, all_resources=everything)
        for identity in ids.values():
            if identity.identity_type == "api_key":
                target = identity.metadata.get("resource_id")
                if target:
                    view._api_keys_by_resource.setdefault(str(target), []).append(identity)
        return view

    def resource(self, resource_id: str) -> Resource | None:
        return self.resources.get(resource_id)

    def any_resource(self, resource_id: str) -> Resource | None:
        """A resource by id whatever its lifetime (for non-temporal lookups)."""
        return self.all_resources.get(resource_id) or self.resources.get(resource_id)

    def identity(self, identity_id: str) -> Identity | None:
        return self.identities.get(identity_id)

    def api_keys_for(self, resource_id: str) -> list[Identity]:
        """API keys scoped to a resource, sorted by key id for determinism."""
        return sorted(self._api_keys_by_resource.get(resource_id, []), key=lambda i: i.identity_id)

    def tenant_period(self) -> IdentitySet:
        """Every identity overlapping the window except system identities (UNALLOCATED never smears)."""
        if self._tenant_period is None:
            self._tenant_period = IdentitySet(
                i for i in self.identities.values() if i.identity_type != SYSTEM_IDENTITY_TYPE
            )
        return self._tenant_period
