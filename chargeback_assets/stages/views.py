"""Inventory views for the windows of a day's lines, built once per window from storage."""

from __future__ import annotations

from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import Resource, Window
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.inventory import all_resources, identities_overlapping


class InventoryViews:
    """Caches one InventoryView per window; every resource is read once for all of them."""

    def __init__(self, scope: TenantScope) -> None:
        self._scope = scope
        self._resources: list[Resource] | None = None
        self._views: dict[Window, InventoryView] = {}

    def for_window(self, window: Window) -> InventoryView:
        if window not in self._views:
            scope = self._scope
            if self._resources is None:
                self._resources = all_resources(scope.db, scope.ecosystem, scope.tenant_id)
            identities = identities_overlapping(scope.db, scope.ecosystem, scope.tenant_id, window)
            self._views[window] = InventoryView.build(window, self._resources, identities)
        return self._views[window]
