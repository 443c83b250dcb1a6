"""Who each billing line of a day can be charged to, as resolved by its product handler.

Each identity is stored as the snapshot the handler used (not a reference to the identities table): the
handler may have made sentinel identities that are not in the inventory, and the calculation must see
exactly what resolution saw. `tenant_period` is not stored; the calculation fills it from the inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from chargeback_assets.engine.models import Identity, IdentityResolution, IdentitySet
from chargeback_assets.storage.codec import day_text, decode_json, encode_json
from chargeback_assets.storage.database import Source, Transaction, delete_day
from chargeback_assets.storage.inventory import (
    IDENTITY_SNAPSHOT_COLUMNS,
    identity_from_row,
    identity_snapshot,
)

_SCOPES = ("resource_active", "metrics_derived")


def replace_resolutions_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    resolutions: Mapping[str, IdentityResolution],
) -> int:
    """Replace the day's resolutions (keyed by billing line id); returns the number of lines stored."""
    d = day_text(day)
    identity_rows = []
    context_rows = []
    # One identity object is shared by many lines (a cluster's key owners by all its lines): encode it once.
    snapshots: dict[int, tuple[str | None, ...]] = {}
    for line_id, resolution in resolutions.items():
        what = f"resolution of billing line {line_id}"
        context_rows.append(
            (ecosystem, tenant_id, d, line_id, encode_json(resolution.context, f"{what}: context"))
        )
        for scope in _SCOPES:
            for position, identity in enumerate(getattr(resolution, scope).values()):
                snapshot = snapshots.get(id(identity))
                if snapshot is None:
                    who = f"{what}: {scope} identity {identity.identity_id}"
                    snapshot = snapshots[id(identity)] = identity_snapshot(
                        ecosystem, tenant_id, identity, who
                    )
                identity_rows.append((ecosystem, tenant_id, d, line_id, scope, position, *snapshot))
    for table in ("identity_resolutions", "resolution_contexts"):
        delete_day(tx, table, ecosystem, tenant_id, day)
    tx.conn.executemany(
        "INSERT INTO resolution_contexts (ecosystem, tenant_id, date, line_id, context_json) "
        "VALUES (?, ?, ?, ?, ?)",
        context_rows,
    )
    tx.conn.executemany(
        "INSERT INTO identity_resolutions (ecosystem, tenant_id, date, line_id, scope, position, "
        f"{IDENTITY_SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 13)})",
        identity_rows,
    )
    return len(context_rows)


def resolutions_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date
) -> dict[str, IdentityResolution]:
    """line_id -> resolution, lines in id order, identities in the order the handler gave them."""
    d = day_text(day)
    scope_params = (ecosystem, tenant_id, d)
    resolutions = {
        line_id: IdentityResolution(context=decode_json(context_json))
        for line_id, context_json in source.conn.execute(
            "SELECT line_id, context_json FROM resolution_contexts "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY line_id",
            scope_params,
        )
    }
    decoded: dict[tuple[str | None, ...], Identity] = {}  # equal snapshots repeat across lines: decode once
    for line_id, scope, *snapshot in source.conn.execute(
        f"SELECT line_id, scope, {IDENTITY_SNAPSHOT_COLUMNS} FROM identity_resolutions "
        "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY line_id, scope, position",
        scope_params,
    ):
        key = tuple(snapshot)
        identity = decoded.get(key)
        if identity is None:
            identity = decoded[key] = identity_from_row(ecosystem, tenant_id, key)
        identities: IdentitySet = getattr(resolutions[line_id], scope)
        identities.add(identity)
    return resolutions
