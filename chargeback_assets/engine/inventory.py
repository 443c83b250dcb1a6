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
    storage. Membership is temporal: the tenant period and the keys that make an owner active on a resource
    are those that lived in the window. Naming is not: `any_resource` and `any_identity` find an entity
    whatever its lifetime, because who a credential or an owner id names does not depend on the billed day
    (a connector runs on a key made after the day it is billed for; an owner outlives a deleted key).
    """

    window: Window
    resources: Mapping[str, Resource]
    identities: IdentitySet
    all_resources: Mapping[str, Resource] = field(default_factory=dict)
    all_identities: Mapping[str, Identity] = field(default_factory=dict)
    _api_keys_by_resource: dict[str, list[Identity]] = field(default_factory=dict, init=False)
    _tenant_period: IdentitySet | None = field(default=None, init=False)

    @classmethod
    def build(
        cls, window: Window, resources: Iterable[Resource], identities: Iterable[Identity]
    ) -> InventoryView:
        everything = {r.resource_id: r for r in resources}
        overlapping = {rid: r for rid, r in everything.items() if r.overlaps(window)}
        known = IdentitySet(identities)
        ids = IdentitySet(i for i in known.values() if i.overlaps(window))
        view = cls(
            window=window,
            resources=overlapping,
            identities=ids,
            all_resources=everything,
            all_identities=known,
        )
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

    def any_identity(self, identity_id: str) -> Identity | None:
        """An identity by id whatever its lifetime (a credential's owner, a key a connector names)."""
        return self.all_identities.get(identity_id) or self.identities.get(identity_id)

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
