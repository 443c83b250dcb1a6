"""Where a Prometheus-priced ecosystem finds its identities: discovered principals, a static list, or both.

Shared by `self_managed_kafka` and `generic_metrics`, which read the same `identity_source` block; only
generic_metrics discovers principals with a query of its own (`label`, `discovery_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import model_validator

from chargeback_assets.validation import Invalid, Text, settings, unique_by

IdentitySourceKind = Literal["prometheus", "static", "both"]


@settings
class StaticIdentity:
    identity_id: Text
    identity_type: Text
    display_name: Text | None = None
    team: Text | None = None


@settings
class IdentitySourceSettings:
    source: IdentitySourceKind = "prometheus"
    principal_to_team: Mapping[str, Text] = field(default_factory=lambda: MappingProxyType({}))
    default_team: Text = "UNASSIGNED"
    static_identities: Annotated[tuple[StaticIdentity, ...], unique_by("identity_id")] = ()

    @property
    def uses_prometheus(self) -> bool:
        return self.source in ("prometheus", "both")

    @property
    def uses_static(self) -> bool:
        return self.source in ("static", "both")

    @model_validator(mode="after")
    def _static_identities_are_usable(self) -> IdentitySourceSettings:
        if self.source == "static" and not self.static_identities:
            raise Invalid("at least one is required when source is static", "static_identities")
        return self


@settings
class DiscoveredIdentitySource(IdentitySourceSettings):
    """An identity source whose principals are the `label` values of `discovery_query` (generic metrics)."""

    label: Text = "principal"
    discovery_query: Text | None = None

    @model_validator(mode="after")
    def _discovery_query_when_discovering(self) -> DiscoveredIdentitySource:
        if self.source != "static" and self.discovery_query is None:
            raise Invalid(f"required when source is {self.source}", "discovery_query")
        return self
