"""Custom tags that users put on resources and identities, overlaid on chargeback rows when emitted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from chargeback_assets.storage.codec import parse_timestamp, timestamp_text
from chargeback_assets.storage.database import Source, Transaction

EntityType = Literal["resource", "identity"]
_ENTITY_TYPES = get_args(EntityType)


@dataclass(frozen=True, slots=True)
class EntityTag:
    ecosystem: str
    tenant_id: str
    entity_type: str
    entity_id: str
    tag_key: str
    tag_value: str
    created_by: str
    created_at: datetime


_COLUMNS = "entity_type, entity_id, tag_key, tag_value, created_by, created_at"


def set_tag(tx: Transaction, tag: EntityTag) -> None:
    """Create the tag or overwrite its value; `created_by`/`created_at` then describe the latest write."""
    _check_entity_type(tag.entity_type)
    if not tag.tag_key.strip():
        raise ValueError(f"tag key on {tag.entity_type} {tag.entity_id} must not be empty")
    tx.conn.execute(
        f"INSERT INTO custom_tags (ecosystem, tenant_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (ecosystem, tenant_id, entity_type, entity_id, tag_key) DO UPDATE SET "
        "tag_value = excluded.tag_value, created_by = excluded.created_by, created_at = excluded.created_at",
        (
            tag.ecosystem,
            tag.tenant_id,
            tag.entity_type,
            tag.entity_id,
            tag.tag_key,
            tag.tag_value,
            tag.created_by,
            timestamp_text(tag.created_at, f"tag {tag.tag_key} on {tag.entity_id}: created_at"),
        ),
    )


def remove_tag(
    tx: Transaction, ecosystem: str, tenant_id: str, entity_type: EntityType, entity_id: str, tag_key: str
) -> bool:
    """Returns whether a tag was removed."""
    _check_entity_type(entity_type)
    cursor = tx.conn.execute(
        "DELETE FROM custom_tags WHERE ecosystem = ? AND tenant_id = ? AND entity_type = ? AND entity_id = ? "
        "AND tag_key = ?",
        (ecosystem, tenant_id, entity_type, entity_id, tag_key),
    )
    return cursor.rowcount > 0


def list_tags(
    source: Source,
    ecosystem: str,
    tenant_id: str,
    entity_type: EntityType | None = None,
    entity_id: str | None = None,
) -> list[EntityTag]:
    if entity_type is not None:
        _check_entity_type(entity_type)
    filters = {"entity_type": entity_type, "entity_id": entity_id}
    where = "".join(f" AND {column} = ?" for column, value in filters.items() if value is not None)
    cursor = source.conn.execute(
        f"SELECT {_COLUMNS} FROM custom_tags WHERE ecosystem = ? AND tenant_id = ?{where} "
        "ORDER BY entity_type, entity_id, tag_key",
        (ecosystem, tenant_id, *(value for value in filters.values() if value is not None)),
    )
    return [
        EntityTag(ecosystem, tenant_id, etype, eid, key, value, by, parse_timestamp(at))
        for etype, eid, key, value, by, at in cursor
    ]


def tags_for(source: Source, ecosystem: str, tenant_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """(entity_type, entity_id) -> {key: value}: the whole tenant's tags in one read, for emitters."""
    tags: dict[tuple[str, str], dict[str, str]] = {}
    for tag in list_tags(source, ecosystem, tenant_id):
        tags.setdefault((tag.entity_type, tag.entity_id), {})[tag.tag_key] = tag.tag_value
    return tags


def _check_entity_type(entity_type: str) -> None:
    if entity_type not in _ENTITY_TYPES:
        raise ValueError(f"tag entity type must be one of {list(_ENTITY_TYPES)}, got {entity_type!r}")
