"""Who each billing line of a day can be charged to, as resolved by its product handler.

Each identity is stored as the snapshot the handler used (not a reference to the identities table): the
handler may have made sentinel identities that are not in the inventory, and the calculation must see
exactly what resolution saw. A day's lines share most of their identities (every line of a cluster names
the cluster's API-key owners), so each distinct snapshot is stored once per day in `resolution_identities`,
numbered, and a line's scopes list those numbers in the handler's order (`resolution_contexts`).
`tenant_period` is not stored; the calculation fills it from the inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache

from chargeback_assets.engine.models import Identity, IdentityResolution, IdentitySet
from chargeback_assets.storage.codec import day_text, decode_json, encode_json, parse_timestamp
from chargeback_assets.storage.database import Source, Transaction, delete_day
from chargeback_assets.storage.inventory import (
    IDENTITY_SNAPSHOT_COLUMNS,
    identity_from_row,
    identity_snapshot,
)

SCOPES = ("resource_active", "metrics_derived")
"""The stored scopes, each a column of `resolution_contexts` listing snapshot numbers."""


def snapshot_refs(numbers: list[int]) -> str:
    """A scope's snapshot numbers as stored: comma-separated, in order ('' for none)."""
    return ",".join(map(str, numbers))


def replace_resolutions_day(
    tx: Transaction,
    ecosystem: str,
    tenant_id: str,
    day: date,
    resolutions: Mapping[str, IdentityResolution],
) -> int:
    """Replace the day's resolutions (keyed by billing line id); returns the number of lines stored."""
    d = day_text(day)
    numbers: dict[tuple[str | None, ...], int] = {}  # snapshot -> its number within the day
    # One identity object is shared by many lines (a cluster's key owners by all its lines): encode it once.
    number_of: dict[int, int] = {}
    # And one resolution by all the lines of a resource (stages/resolution.py): its columns are worked once.
    columns_of: dict[int, tuple[str, ...]] = {}
    context_rows = []
    for line_id, resolution in resolutions.items():
        columns = columns_of.get(id(resolution))
        if columns is None:
            columns = columns_of[id(resolution)] = _resolution_columns(
                ecosystem, tenant_id, resolution, f"resolution of billing line {line_id}", numbers, number_of
            )
        context_rows.append((ecosystem, tenant_id, d, line_id, *columns))
    for table in ("resolution_identities", "resolution_contexts"):
        delete_day(tx, table, ecosystem, tenant_id, day)
    tx.conn.executemany(
        "INSERT INTO resolution_contexts (ecosystem, tenant_id, date, line_id, context_json, "
        f"{', '.join(SCOPES)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        context_rows,
    )
    tx.conn.executemany(
        "INSERT INTO resolution_identities (ecosystem, tenant_id, date, snapshot, "
        f"{IDENTITY_SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
        [(ecosystem, tenant_id, d, number, *snapshot) for snapshot, number in numbers.items()],
    )
    return len(context_rows)


def _resolution_columns(
    ecosystem: str,
    tenant_id: str,
    resolution: IdentityResolution,
    what: str,
    numbers: dict[tuple[str | None, ...], int],
    number_of: dict[int, int],
) -> tuple[str, ...]:
    """`context_json` and each scope's snapshot numbers; new snapshots are numbered into `numbers`."""
    refs = []
    for scope in SCOPES:
        scope_numbers = []
        for identity in getattr(resolution, scope).values():
            number = number_of.get(id(identity))
            if number is None:
                who = f"{what}: {scope} identity {identity.identity_id}"
                snapshot = identity_snapshot(ecosystem, tenant_id, identity, who)
                number = number_of[id(identity)] = numbers.setdefault(snapshot, len(numbers))
            scope_numbers.append(number)
        refs.append(snapshot_refs(scope_numbers))
    return (encode_json(resolution.context, f"{what}: context"), *refs)


def resolutions_for_day(
    source: Source, ecosystem: str, tenant_id: str, day: date
) -> dict[str, IdentityResolution]:
    """line_id -> resolution, lines in id order, identities in the order the handler gave them.

    Lines that named the same snapshot share one `Identity`, decoded once.
    """
    scope_params = (ecosystem, tenant_id, day_text(day))
    timestamp_of = cache(parse_timestamp)
    identities: dict[str, Identity] = {
        str(number): identity_from_row(ecosystem, tenant_id, snapshot, timestamp_of)
        for number, *snapshot in source.conn.execute(
            f"SELECT snapshot, {IDENTITY_SNAPSHOT_COLUMNS} FROM resolution_identities "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ?",
            scope_params,
        )
    }

    def identity_set(refs: str) -> IdentitySet:
        return IdentitySet([identities[number] for number in refs.split(",")] if refs else ())

    # The lines of one resource stored the same columns: they are read back as one shared resolution.
    shared: dict[tuple[str, str, str], IdentityResolution] = {}

    def resolution(context_json: str, resource_active: str, metrics_derived: str) -> IdentityResolution:
        key = (context_json, resource_active, metrics_derived)
        found = shared.get(key)
        if found is None:
            found = shared[key] = IdentityResolution(
                resource_active=identity_set(resource_active),
                metrics_derived=identity_set(metrics_derived),
                context=decode_json(context_json),
            )
        return found

    return {
        line_id: resolution(context_json, resource_active, metrics_derived)
        for line_id, context_json, resource_active, metrics_derived in source.conn.execute(
            f"SELECT line_id, context_json, {', '.join(SCOPES)} FROM resolution_contexts "
            "WHERE ecosystem = ? AND tenant_id = ? AND date = ? ORDER BY line_id",
            scope_params,
        )
    }
