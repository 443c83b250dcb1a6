"""Where a Prometheus-priced ecosystem finds its identities: discovered principals, a static list, or both.

Shared by `self_managed_kafka` and `generic_metrics`, which read the same `identity_source` block; only
generic_metrics discovers principals with a query of its own (`label`, `discovery_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from chargeback_assets.settings_reader import Section, defaults, reject_duplicates
from chargeback_assets.validation import ConfigError

IdentitySourceKind = Literal["prometheus", "static", "both"]
IDENTITY_SOURCE_KINDS: tuple[IdentitySourceKind, ...] = ("prometheus", "static", "both")


@dataclass(frozen=True, slots=True)
class StaticIdentity:
    identity_id: str
    identity_type: str
    display_name: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class IdentitySourceSettings:
    source: IdentitySourceKind = "prometheus"
    principal_to_team: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_team: str = "UNASSIGNED"
    static_identities: tuple[StaticIdentity, ...] = ()
    label: str = "principal"
    discovery_query: str | None = None

    @property
    def uses_prometheus(self) -> bool:
        return self.source in ("prometheus", "both")

    @property
    def uses_static(self) -> bool:
        return self.source in ("static", "both")


def read_identity_source(section: Section, *, with_discovery_query: bool) -> IdentitySourceSettings:
    """Reads `identity_source`; `with_discovery_query` adds the `label` and `discovery_query` keys."""
    default = defaults(IdentitySourceSettings)
    with section:
        source = section.string("source", default["source"], choices=IDENTITY_SOURCE_KINDS)
        with section.section("principal_to_team") as teams:
            principal_to_team = {principal: teams.string(principal) for principal in teams}
        static_identities = tuple(
            _read_static_identity(item) for item in section.sections("static_identities")
        )
        reject_duplicates(
            (
                (section.at(f"static_identities[{index}].identity_id"), item.identity_id)
                for index, item in enumerate(static_identities)
            ),
            "identity_id",
        )
        if source == "static" and not static_identities:
            raise ConfigError(
                section.at("static_identities"), "at least one is required when source is static"
            )
        label, discovery_query = default["label"], None
        if with_discovery_query:
            label = section.string("label", label)
            discovery_query = section.string("discovery_query", None)
            if source != "static" and discovery_query is None:
                raise ConfigError(section.at("discovery_query"), f"required when source is {source}")
        return IdentitySourceSettings(
            source=source,
            principal_to_team=MappingProxyType(principal_to_team),
            default_team=section.string("default_team", default["default_team"]),
            static_identities=static_identities,
            label=label,
            discovery_query=discovery_query,
        )


def _read_static_identity(section: Section) -> StaticIdentity:
    with section:
        return StaticIdentity(
            identity_id=section.string("identity_id"),
            identity_type=section.string("identity_type"),
            display_name=section.string("display_name", None),
            team=section.string("team", None),
        )
