"""Identities of the Prometheus-priced ecosystems: principals seen in metrics and configured static ones.

Shared by generic_metrics and self_managed_kafka, which read the same `identity_source` block. A principal's
display name is its team when it is mapped to one, so reports group by team, and the principal id
otherwise; `raw_principal` keeps the label value either way. Configured (static) identities are charged as
`resource_active`; principals with usage on a line are its `metrics_derived` identities.
"""

from __future__ import annotations

from collections.abc import Collection

from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings, StaticIdentity
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import Identity, IdentityResolution, IdentitySet, ResourceUsage

PRINCIPAL_TYPE = "principal"


def principal_identity(
    principal: str, source: IdentitySourceSettings, *, ecosystem: str, tenant_id: str
) -> Identity:
    team = source.principal_to_team.get(principal, source.default_team)
    return Identity(
        ecosystem=ecosystem,
        tenant_id=tenant_id,
        identity_id=principal,
        identity_type=PRINCIPAL_TYPE,
        display_name=team if team != source.default_team else principal,
        metadata={"raw_principal": principal, "team": team},
    )


def static_identity(item: StaticIdentity, *, ecosystem: str, tenant_id: str) -> Identity:
    return Identity(
        ecosystem=ecosystem,
        tenant_id=tenant_id,
        identity_id=item.identity_id,
        identity_type=item.identity_type,
        display_name=item.display_name or item.identity_id,
        metadata={"team": item.team} if item.team else {},
    )


def gathered_identities(
    source: IdentitySourceSettings, principals: Collection[str] | None, *, ecosystem: str, tenant_id: str
) -> list[Identity]:
    """The identities an inventory gather yields; `principals` is None when discovery failed.

    Static identities are yielded when the source asks for them, and also as a stand-in when Prometheus is
    the source but found no principal (unreachable, or the metric has no principal label).
    """
    found = sorted(principals or ()) if source.uses_prometheus else []
    identities = [principal_identity(p, source, ecosystem=ecosystem, tenant_id=tenant_id) for p in found]
    if source.uses_static or not found:
        identities.extend(
            static_identity(item, ecosystem=ecosystem, tenant_id=tenant_id)
            for item in source.static_identities
        )
    return identities


def usage_subjects(usage: ResourceUsage | None) -> list[str]:
    """Every subject with a row under any metric key, in order of first appearance."""
    seen: dict[str, None] = {}
    for by_subject in (usage or {}).values():
        seen.update(dict.fromkeys(by_subject))
    return list(seen)


def resolve_identities(
    usage: ResourceUsage | None,
    inventory: InventoryView,
    source: IdentitySourceSettings,
    *,
    ecosystem: str,
    tenant_id: str,
) -> IdentityResolution:
    """metrics_derived: subjects seen in the line's metrics; resource_active: static identities that apply.

    Statics apply when the source includes them, or when the inventory fell back to them (see
    `gathered_identities`); a subject known to the inventory keeps its stored identity.
    """
    derived = IdentitySet(
        inventory.identity(subject)
        or principal_identity(subject, source, ecosystem=ecosystem, tenant_id=tenant_id)
        for subject in usage_subjects(usage)
    )
    statics = [
        static_identity(item, ecosystem=ecosystem, tenant_id=tenant_id) for item in source.static_identities
    ]
    active = IdentitySet(
        identity for identity in statics if source.uses_static or inventory.identity(identity.identity_id)
    )
    return IdentityResolution(resource_active=active, metrics_derived=derived)
