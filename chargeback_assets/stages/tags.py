"""Custom tags: one validation rule for config and command line, and config tags mirrored into storage.

Config `tags:` are written to the `custom_tags` table (created_by "config") each time a tenant is emitted,
so emitters read one source. A tag set on the command line is never overwritten by config; a config tag
removed from the file is removed from the table at the next emission.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.tags import EntityTag, EntityType, list_tags, remove_tag, set_tag

CONFIG_AUTHOR = "config"


def sync_config_tags(data: TenantData, now: datetime) -> int:
    """Mirror the tenant's config tags into storage; returns how many tags were written or removed."""
    configured: dict[tuple[str, str, str], str] = {
        (entity_type, entity_id, key): value
        for entity_type, table in (
            ("identity", data.tenant.tags.identities),
            ("resource", data.tenant.tags.resources),
        )
        for entity_id, tags in table.items()
        for key, value in tags.items()
    }
    changes = 0
    with data.db.transaction() as tx:
        stored = {
            (t.entity_type, t.entity_id, t.tag_key): t for t in list_tags(tx, data.ecosystem, data.tenant_id)
        }
        for (entity_type, entity_id, key), tag in stored.items():
            if tag.created_by == CONFIG_AUTHOR and (entity_type, entity_id, key) not in configured:
                changes += remove_tag(
                    tx, data.ecosystem, data.tenant_id, cast(EntityType, entity_type), entity_id, key
                )
        for (entity_type, entity_id, key), value in configured.items():
            current = stored.get((entity_type, entity_id, key))
            if current is not None and (current.created_by != CONFIG_AUTHOR or current.tag_value == value):
                continue
            set_tag(
                tx,
                EntityTag(
                    data.ecosystem, data.tenant_id, entity_type, entity_id, key, value, CONFIG_AUTHOR, now
                ),
            )
            changes += 1
    return changes
