"""Inventory views for the windows of a step's lines, built once per window from one read of storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import PAYER_IDENTITY_TYPES, Identity, Resource, Window
from chargeback_assets.storage.inventory import all_identities, all_resources

if TYPE_CHECKING:
    from chargeback_assets.stages.scope import TenantScope


class InventoryViews:
    """Caches one InventoryView per window; the tenant's whole inventory is read once for all of them.

    Each view needs every resource and identity anyway, for the lookups that do not depend on the day.
    One instance serves a whole step (`TenantScope.inventory_views`): the steps that read the inventory
    (resolution, allocation) never write it, and reading a large tenant's identities once per day was the
    biggest single cost of a month's backfill.
    """

    def __init__(self, scope: TenantScope) -> None:
        self._scope = scope
        self._inventory: tuple[list[Resource], list[Identity]] | None = None
        self._views: dict[Window, InventoryView] = {}
        self._payers: frozenset[str] | None = None

    def for_window(self, window: Window) -> InventoryView:
        if window not in self._views:
            self._views[window] = InventoryView.build(window, *self._read())
        return self._views[window]

    def payer_ids(self) -> frozenset[str]:
        """The ids of the tenant's gathered identities, whatever their lifetime, that can be sent a bill
        (`PAYER_IDENTITY_TYPES`): cost charged to any other id is unattributed."""
        if self._payers is None:
            self._payers = frozenset(
                identity.identity_id
                for identity in self._read()[1]
                if identity.identity_type in PAYER_IDENTITY_TYPES
            )
        return self._payers

    def _read(self) -> tuple[list[Resource], list[Identity]]:
        if self._inventory is None:
            scope = self._scope
            self._inventory = (
                all_resources(scope.db, scope.ecosystem, scope.tenant_id),
                all_identities(scope.db, scope.ecosystem, scope.tenant_id, scope.made_identities),
            )
        return self._inventory
