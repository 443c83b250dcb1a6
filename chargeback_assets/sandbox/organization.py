"""The simulated organization as the API returns it: objects per list endpoint, connectors, costs, usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chargeback_assets.sandbox.usage import UsageStore

JsonObject = dict[str, Any]

OBJECT_KINDS = (
    "organizations",
    "environments",
    "kafka_clusters",
    "schema_registries",
    "ksqldb_clusters",
    "compute_pools",
    "flink_statements",
    "service_accounts",
    "users",
    "api_keys",
    "identity_providers",
)
"""Keys of `Organization.objects` holding plain lists; `identity_pools` is keyed by provider id instead."""


@dataclass
class Organization:
    """Everything the sandbox serves. `objects` holds API objects exactly as listed; costs are Cost rows."""

    organization_id: str
    objects: dict[str, list[JsonObject]]
    identity_pools: dict[str, list[JsonObject]]
    connectors: dict[str, dict[str, dict[str, JsonObject]]]
    costs: list[JsonObject]
    usage: UsageStore = field(repr=False)

    def environment_ids(self) -> list[str]:
        return [env["id"] for env in self.objects["environments"]]

    def cluster_ids(self, environment_id: str | None = None) -> list[str]:
        return [
            c["id"]
            for c in self.objects["kafka_clusters"]
            if environment_id is None or c["spec"]["environment"]["id"] == environment_id
        ]

    def rename(self, object_id: str, display_name: str) -> None:
        """Give a listed object (service account, environment, cluster, API key...) a new display name, as
        its owner may at any time: a test makes it hostile (control characters, formulas, quotes) to see
        that every output still holds."""
        for kind in OBJECT_KINDS:
            for item in self.objects.get(kind, []):
                if item.get("id") != object_id:
                    continue
                holder = item["spec"] if "display_name" in item.get("spec", {}) else item
                if "display_name" not in holder:
                    raise ValueError(f"{kind} {object_id} has no display_name")
                holder["display_name"] = display_name
                return
        raise KeyError(f"no object {object_id!r} in the organization")
