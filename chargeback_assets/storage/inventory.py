"""Resources and identities with their lifecycle: when first created, last seen, and deleted.

Inventory is not partitioned by day: one row per entity, upserted on every gather. Deletion is detected by
the caller (an entity active before but missing from a gather) and recorded here with `mark_deleted`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from functools import cache
from typing import Literal

from chargeback_assets.engine.models import SYSTEM_IDENTITY_TYPE, UNALLOCATED, Identity, Resource, Window
from chargeback_assets.storage.codec import (
    day_bounds,
    decode_json,
    encode_json,
    optional_timestamp_text,
    parse_timestamp,
    require_scope,
    timestamp_text,
)
from chargeback_assets.storage.database import Source, Transaction

EntityKind = Literal["resource", "identity"]

_RESOURCE_COLUMNS = (
    "resource_id, resource_type, display_name, parent_id, owner_id, status, cloud, region, created_at, "
    "deleted_at, last_seen_at, metadata_json"
)
IDENTITY_SNAPSHOT_COLUMNS = (
    "identity_id, identity_type, display_name, created_at, deleted_at, last_seen_at, metadata_json"
)
"""The columns that rebuild an `Identity`, in the order `identity_snapshot` and `identity_from_row` use."""


def _lifecycle_update(table: str) -> str:
    """Re-gathering an entity revives it (deleted_at/status come from the gather, normally None/'active'); a
    gather that does not know the creation time keeps the one recorded earlier."""
    return (
        f"created_at = COALESCE(excluded.created_at, {table}.created_at), deleted_at = excluded.deleted_at, "
        "status = excluded.status, last_seen_at = excluded.last_seen_at, "
        "display_name = excluded.display_name, metadata_json = excluded.metadata_json"
    )


def upsert_resources(
    tx: Transaction, ecosystem: str, tenant_id: str, resources: Iterable[Resource], seen_at: datetime
) -> int:
    seen = timestamp_text(seen_at, "seen_at")
    rows = []
    for r in resources:
        what = f"resource {r.resource_id}"
        require_scope(ecosystem, tenant_id, r.ecosystem, r.tenant_id, what)
        rows.append(
            (
                ecosystem,
                tenant_id,
                r.resource_id,
                r.resource_type,
                r.display_name,
                r.parent_id,
                r.owner_id,
                r.status,
                r.cloud,
                r.region,
                optional_timestamp_text(r.created_at, f"{what}: created_at"),
                optional_timestamp_text(r.deleted_at, f"{what}: deleted_at"),
                seen,
                encode_json(r.metadata, f"{what}: metadata"),
            )
        )
    tx.conn.executemany(
        f"INSERT INTO resources (ecosystem, tenant_id, {_RESOURCE_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
        f"ON CONFLICT (ecosystem, tenant_id, resource_id) DO UPDATE SET {_lifecycle_update('resources')}, "
        "resource_type = excluded.resource_type, parent_id = excluded.parent_id, "
        "owner_id = excluded.owner_id, cloud = excluded.cloud, region = excluded.region",
        rows,
    )
    return len(rows)


def upsert_identities(
    tx: Transaction, ecosystem: str, tenant_id: str, identities: Iterable[Identity], seen_at: datetime
) -> int:
    rows = [
        (
            ecosystem,
            tenant_id,
            *identity_snapshot(
                ecosystem, tenant_id, replace(i, last_seen_at=seen_at), f"identity {i.identity_id}"
            ),
            "active" if i.deleted_at is None else "deleted",
        )
        for i in identities
    ]
    tx.conn.executemany(
        f"INSERT INTO identities (ecosystem, tenant_id, {IDENTITY_SNAPSHOT_COLUMNS}, status) "
        f"VALUES ({', '.join('?' * 10)}) "
        f"ON CONFLICT (ecosystem, tenant_id, identity_id) DO UPDATE SET {_lifecycle_update('identities')}, "
        "identity_type = excluded.identity_type",
        rows,
    )
    return len(rows)


def mark_deleted(
    tx: Transaction, ecosystem: str, tenant_id: str, kind: EntityKind, ids: Iterable[str], at: datetime
) -> list[str]:
    """Record that entities disappeared at `at`; returns the ids actually marked, sorted.

    Entities already deleted keep their first deletion time. System identities (`UNALLOCATED` and any of
    type `system`) are never marked: they are not gathered, so a deletion scan always "misses" them.
    """
    table, id_column = _table(kind)
    guard = (
        f" AND identity_type != '{SYSTEM_IDENTITY_TYPE}' AND identity_id != '{UNALLOCATED}'"
        if kind == "identity"
        else ""
    )
    deleted = timestamp_text(at, "deleted at")
    marked = []
    for entity_id in sorted(set(ids)):
        cursor = tx.conn.execute(
            f"UPDATE {table} SET deleted_at = ?, status = 'deleted' "
            f"WHERE ecosystem = ? AND tenant_id = ? AND {id_column} = ? AND deleted_at IS NULL{guard}",
            (deleted, ecosystem, tenant_id, entity_id),
        )
        if cursor.rowcount:
            marked.append(entity_id)
    return marked


def active_ids(
    source: Source,
    ecosystem: str,
    tenant_id: str,
    kind: EntityKind,
    at: datetime,
    of_type: str | None = None,
    include_system: bool = True,
) -> set[str]:
    """Ids of entities active at `at` (created at or before it, not deleted by then), optionally of one type.

    `include_system=False` leaves out system identities, which a deletion scan must not count.
    """
    table, id_column = _table(kind)
    type_column = "resource_type" if kind == "resource" else "identity_type"
    instant = timestamp_text(at, "at")
    sql = (
        f"SELECT {id_column} FROM {table} WHERE ecosystem = ? AND tenant_id = ? "
        "AND (created_at IS NULL OR created_at <= ?) AND (deleted_at IS NULL OR deleted_at > ?)"
    )
    params: list[str] = [ecosystem, tenant_id, instant, instant]
    if of_type is not None:
        sql += f" AND {type_column} = ?"
        params.append(of_type)
    if kind == "identity" and not include_system:
        sql += f" AND identity_type != '{SYSTEM_IDENTITY_TYPE}' AND identity_id != '{UNALLOCATED}'"
    return {row[0] for row in source.conn.execute(sql, params)}


def resources_overlapping(source: Source, ecosystem: str, tenant_id: str, window: Window) -> list[Resource]:
    return _resources(source, ecosystem, tenant_id, *_overlap_filter(window))


def all_resources(source: Source, ecosystem: str, tenant_id: str) -> list[Resource]:
    """Every known resource whatever its lifetime (some lookups are not temporal)."""
    return _resources(source, ecosystem, tenant_id)


def count_for_day(
    source: Source, ecosystem: str, tenant_id: str, kind: EntityKind, day: date
) -> tuple[int, int]:
    """(entities that lived during the day, those of them deleted within it): a day's view of an inventory
    that is itself not partitioned by day."""
    table, _ = _table(kind)
    condition, params = _overlap_filter(Window.for_day(day))
    start, end = day_bounds(day)
    alive, deleted = source.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN deleted_at >= ? AND deleted_at < ? THEN 1 ELSE 0 END), 0) "
        f"FROM {table} "
        f"WHERE ecosystem = ? AND tenant_id = ?{condition}",
        (start, end, ecosystem, tenant_id, *params),
    ).fetchone()
    return alive, deleted


def identities_overlapping(source: Source, ecosystem: str, tenant_id: str, window: Window) -> list[Identity]:
    return _identities(source, ecosystem, tenant_id, *_overlap_filter(window))


def all_identities(
    source: Source, ecosystem: str, tenant_id: str, made: MadeIdentities | None = None
) -> list[Identity]:
    """Every known identity whatever its lifetime (who an id names does not depend on the day); `made`
    supplies those already made from the same stored rows."""
    return _identities(source, ecosystem, tenant_id, made=made)


class MadeIdentities:
    """Identities made from stored rows, kept by row for the rest of a run.

    A run reads a tenant's whole inventory in each step that needs it (resolution, then allocation), and
    making a large tenant's ~6,000 identities from their rows was ~50 ms of each read, against ~10 ms for the
    query. A row always makes an equal identity and identities are never changed, so nothing kept can go
    stale: a row a gather changed is another key.
    """

    __slots__ = ("_by_row",)

    def __init__(self) -> None:
        self._by_row: dict[tuple[str, str, tuple[str | None, ...]], Identity] = {}

    def identity(
        self,
        ecosystem: str,
        tenant_id: str,
        row: Sequence[str | None],
        timestamp_of: Callable[[str | None], datetime | None],
    ) -> Identity:
        """`identity_from_row`, made once per tenant and row."""
        key = (ecosystem, tenant_id, tuple(row))
        identity = self._by_row.get(key)
        if identity is None:
            identity = self._by_row[key] = identity_from_row(ecosystem, tenant_id, row, timestamp_of)
        return identity


def identity_snapshot(
    ecosystem: str, tenant_id: str, identity: Identity, what: str
) -> tuple[str | None, ...]:
    """An identity's values for `IDENTITY_SNAPSHOT_COLUMNS`, refusing one of another tenant."""
    require_scope(ecosystem, tenant_id, identity.ecosystem, identity.tenant_id, what)
    return (
        identity.identity_id,
        identity.identity_type,
        identity.display_name,
        optional_timestamp_text(identity.created_at, f"{what}: created_at"),
        optional_timestamp_text(identity.deleted_at, f"{what}: deleted_at"),
        optional_timestamp_text(identity.last_seen_at, f"{what}: last_seen_at"),
        encode_json(identity.metadata, f"{what}: metadata"),
    )


def identity_from_row(
    ecosystem: str,
    tenant_id: str,
    row: Sequence[str | None],
    timestamp_of: Callable[[str | None], datetime | None] = parse_timestamp,
) -> Identity:
    """`timestamp_of` is `parse_timestamp` or a memo of it: identities gathered together share their
    `last_seen_at`, and a read of thousands parses each distinct text once."""
    identity_id, identity_type, display_name, created_at, deleted_at, last_seen_at, metadata_json = row
    return Identity(
        ecosystem=ecosystem,
        tenant_id=tenant_id,
        identity_id=identity_id,
        identity_type=identity_type,
        display_name=display_name,
        created_at=timestamp_of(created_at),
        deleted_at=timestamp_of(deleted_at),
        last_seen_at=timestamp_of(last_seen_at),
        metadata=decode_json(metadata_json),
    )


def _identities(
    source: Source,
    ecosystem: str,
    tenant_id: str,
    condition: str = "",
    params: tuple[str, ...] = (),
    made: MadeIdentities | None = None,
) -> list[Identity]:
    cursor = source.conn.execute(
        f"SELECT {IDENTITY_SNAPSHOT_COLUMNS} FROM identities "
        f"WHERE ecosystem = ? AND tenant_id = ?{condition} ORDER BY identity_id",
        (ecosystem, tenant_id, *params),
    )
    timestamp_of = cache(parse_timestamp)
    make = identity_from_row if made is None else made.identity
    return [make(ecosystem, tenant_id, row, timestamp_of) for row in cursor]


def _resources(
    source: Source, ecosystem: str, tenant_id: str, condition: str = "", params: tuple[str, ...] = ()
) -> list[Resource]:
    cursor = source.conn.execute(
        f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE ecosystem = ? AND tenant_id = ?{condition} "
        "ORDER BY resource_id",
        (ecosystem, tenant_id, *params),
    )
    return [
        Resource(
            ecosystem=ecosystem,
            tenant_id=tenant_id,
            resource_id=resource_id,
            resource_type=resource_type,
            display_name=display_name,
            parent_id=parent_id,
            owner_id=owner_id,
            status=status,
            cloud=cloud,
            region=region,
            created_at=parse_timestamp(created_at),
            deleted_at=parse_timestamp(deleted_at),
            last_seen_at=parse_timestamp(last_seen_at),
            metadata=decode_json(metadata_json),
        )
        for (
            resource_id,
            resource_type,
            display_name,
            parent_id,
            owner_id,
            status,
            cloud,
            region,
            created_at,
            deleted_at,
            last_seen_at,
            metadata_json,
        ) in cursor
    ]


def _overlap_filter(window: Window) -> tuple[str, tuple[str, ...]]:
    """Lifetime overlaps `[start, end)`: created before the end and not deleted before the start."""
    start = timestamp_text(window.start, "window start")
    end = timestamp_text(window.end, "window end")
    return (
        " AND (created_at IS NULL OR created_at < ?) AND (deleted_at IS NULL OR deleted_at >= ?)",
        (end, start),
    )


def _table(kind: EntityKind) -> tuple[str, str]:
    if kind == "resource":
        return "resources", "resource_id"
    if kind == "identity":
        return "identities", "identity_id"
    raise ValueError(f"entity kind must be 'resource' or 'identity', got {kind!r}")
