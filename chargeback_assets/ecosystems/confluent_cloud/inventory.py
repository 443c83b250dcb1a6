"""The Confluent Cloud inventory: resources and identities of one organization, gathered from the REST APIs.

A failing endpoint does not stop the gather: its error is recorded and the resource types it feeds are left
out of `observed_types`, so nothing of those types can be marked deleted because of a partial view. Items the
gatherer cannot read (no id, wrong shape) count as an endpoint failure for the same reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from chargeback_assets.ecosystems.base import InventoryGather
from chargeback_assets.ecosystems.confluent_cloud.billing import row_hash
from chargeback_assets.ecosystems.confluent_cloud.client import CCloudApiError, CCloudClient
from chargeback_assets.ecosystems.confluent_cloud.settings import FlinkRegion, HttpSettings
from chargeback_assets.engine.models import UTC, Identity, Resource

log = logging.getLogger(__name__)

ECOSYSTEM = "confluent_cloud"
IDENTITIES = "identities"
"""The `observed_types` entry that grants identity-deletion authority (every identity endpoint succeeded)."""

ENV_SCOPED_TYPES = (
    "kafka_cluster",
    "connector",
    "schema_registry",
    "ksqldb_cluster",
    "flink_compute_pool",
    "flink_statement",
)
RESOURCE_TYPES = ("environment", *ENV_SCOPED_TYPES)
KSQLDB_OWNER_UNKNOWN = "ksqldb_owner_unknown"
STOPPED_PHASES = frozenset({"COMPLETED", "FAILED", "STOPPED"})

_ORG_IN_CRN = re.compile(r"organization=([^/]+)")
T = TypeVar("T")


class UnreadableItem(ValueError):
    """An API item the gatherer cannot map (no id, wrong shape)."""


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 with `Z`, offsets or fractions -> aware UTC; naive means UTC; anything else -> None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def dig(obj: Any, *path: str) -> Any:
    """The value at `path` inside nested objects, or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _item_id(item: Any) -> str:
    identifier = dig(item, "id")
    if not isinstance(identifier, str) or not identifier:
        raise UnreadableItem(f"an item has no string id: {str(item)[:120]}")
    return identifier


def _lower(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def connector_auth(config: dict[str, Any]) -> dict[str, Any]:
    """The connector's Kafka credentials: explicit `kafka.auth.mode`, else inferred from which key is set."""
    mode = config.get("kafka.auth.mode")
    if not isinstance(mode, str) or not mode:
        if "kafka.api.key" in config:
            mode = "KAFKA_API_KEY"
        elif "kafka.service.account.id" in config:
            mode = "SERVICE_ACCOUNT"
        else:
            mode = "UNKNOWN"
    mode = mode.upper()
    auth: dict[str, Any] = {"kafka_auth_mode": mode}
    if mode == "SERVICE_ACCOUNT":
        auth["kafka_service_account_id"] = config.get("kafka.service.account.id")
    elif mode == "KAFKA_API_KEY":
        auth["kafka_api_key"] = config.get("kafka.api.key")
    return auth


@dataclass(slots=True)
class _Run:
    """What one gather has collected so far, and which types lost their deletion authority."""

    now: datetime
    resources: dict[str, Resource] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def fetch(self, endpoint: str, feeds: Iterable[str], read: Callable[[], list[T]]) -> list[T] | None:
        """Run one endpoint's read; on failure record it against the types it feeds and return None."""
        try:
            return read()
        except (CCloudApiError, UnreadableItem) as exc:
            message = f"{endpoint}: {exc}"
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            message = f"{endpoint}: unreadable response ({type(exc).__name__}: {exc})"
        self.fail(feeds, message)
        return None

    def fail(self, feeds: Iterable[str], message: str) -> None:
        log.warning("inventory endpoint failed: %s", message)
        self.errors.append(message)
        self.failed.update(feeds)

    def keep_resources(self, resources: Iterable[Resource]) -> None:
        for resource in resources:
            self.resources[resource.resource_id] = resource

    def keep_identities(self, identities: Iterable[Identity]) -> None:
        for identity in identities:
            self.identities[identity.identity_id] = identity


class CCloudInventory:
    """Gathers a Confluent Cloud organization; Flink statements go through each region's own API and key."""

    def __init__(
        self,
        client: CCloudClient,
        tenant_id: str,
        flink_regions: Sequence[FlinkRegion] = (),
        http_settings: HttpSettings | None = None,
        now: datetime | None = None,
    ) -> None:
        self.client = client
        self.tenant_id = tenant_id
        self.flink_regions = {r.region_id.strip().lower(): r for r in flink_regions}
        self.http_settings = http_settings or client.settings
        self.now = now

    def gather(self) -> InventoryGather:
        run = _Run(now=self.now or datetime.now(UTC))
        self._gather_resources(run)
        identities_ok = self._gather_identities(run)
        observed = {t for t in RESOURCE_TYPES if t not in run.failed}
        if identities_ok:
            observed.add(IDENTITIES)
        return InventoryGather(
            resources=sorted(run.resources.values(), key=lambda r: (r.resource_type, r.resource_id)),
            identities=sorted(run.identities.values(), key=lambda i: (i.identity_type, i.identity_id)),
            observed_types=observed,
            errors=run.errors,
        )

    # -- resources -------------------------------------------------------------------------------------------

    def _resource(self, run: _Run, item: Any, resource_type: str, **fields: Any) -> Resource:
        return Resource(
            ecosystem=ECOSYSTEM,
            tenant_id=self.tenant_id,
            resource_id=fields.pop("resource_id", None) or _item_id(item),
            resource_type=resource_type,
            status="active",
            created_at=parse_timestamp(dig(item, "metadata", "created_at")),
            last_seen_at=run.now,
            **fields,
        )

    def _list(
        self, run: _Run, path: str, params: dict[str, str], feeds: Iterable[str], mapper: Callable
    ) -> list:
        endpoint = path + "".join(f" {k}={v}" for k, v in params.items())
        return run.fetch(
            endpoint, feeds, lambda: [mapper(run, item) for item in self.client.list(path, params)]
        )

    def _gather_resources(self, run: _Run) -> None:
        environments = self._list(run, "/org/v2/environments", {}, RESOURCE_TYPES, self._environment)
        if environments is None:
            return
        run.keep_resources(environments)
        pools: list[Resource] = []
        for env in sorted(r.resource_id for r in environments):
            scope = {"environment": env}
            clusters = self._list(
                run, "/cmk/v2/clusters", scope, ("kafka_cluster", "connector"), self._cluster
            )
            for cluster in clusters or []:
                run.keep_resources([cluster])
                run.keep_resources(self._connectors(run, env, cluster.resource_id) or [])
            run.keep_resources(
                self._list(run, "/srcm/v3/clusters", scope, ("schema_registry",), self._schema_registry) or []
            )
            run.keep_resources(
                self._list(run, "/ksqldbcm/v2/clusters", scope, ("ksqldb_cluster",), self._ksqldb) or []
            )
            env_pools = self._list(
                run, "/fcpm/v2/compute-pools", scope, ("flink_compute_pool", "flink_statement"), self._pool
            )
            run.keep_resources(env_pools or [])
            pools.extend(env_pools or [])
        self._gather_statements(run, pools)

    def _environment(self, run: _Run, item: Any) -> Resource:
        return self._resource(
            run,
            item,
            "environment",
            display_name=dig(item, "display_name"),
            metadata={"resource_name": dig(item, "metadata", "resource_name")},
        )

    def _env_scoped(
        self, run: _Run, item: Any, resource_type: str, metadata: dict[str, Any], owner_id: str | None = None
    ) -> Resource:
        """Clusters, registries, ksqlDB clusters and compute pools share one shape: a `spec` with display
        name, environment, cloud and region; only their own metadata differs."""
        spec = dig(item, "spec") or {}
        env_id = dig(spec, "environment", "id")
        return self._resource(
            run,
            item,
            resource_type,
            display_name=dig(spec, "display_name"),
            parent_id=env_id,
            owner_id=owner_id,
            cloud=_lower(dig(spec, "cloud")),
            region=_lower(dig(spec, "region")),
            metadata={"env_id": env_id, **metadata},
        )

    def _cluster(self, run: _Run, item: Any) -> Resource:
        spec = dig(item, "spec") or {}
        return self._env_scoped(
            run,
            item,
            "kafka_cluster",
            {
                "region_raw": dig(spec, "region"),
                "cluster_type": dig(spec, "config", "kind"),
                "availability": dig(spec, "availability"),
                "kafka_bootstrap_endpoint": dig(spec, "kafka_bootstrap_endpoint"),
            },
        )

    def _connectors(self, run: _Run, env: str, cluster_id: str) -> list[Resource] | None:
        path = f"/connect/v1/environments/{env}/clusters/{cluster_id}/connectors"

        def read() -> list[Resource]:
            body = self.client.get_raw(path, {"expand": "info,status,id"})
            if not isinstance(body, dict):
                raise UnreadableItem("the connector list is not a name-keyed object")
            return [
                self._connector(run, env, cluster_id, name, entry) for name, entry in sorted(body.items())
            ]

        return run.fetch(path, ("connector",), read)

    def _connector(self, run: _Run, env: str, cluster_id: str, name: str, entry: Any) -> Resource:
        if not isinstance(entry, dict):
            raise UnreadableItem(f"connector {name!r} is not an object")
        config = dig(entry, "info", "config")
        config = config if isinstance(config, dict) else {}
        connector_id = dig(entry, "id", "id")
        return Resource(
            ecosystem=ECOSYSTEM,
            tenant_id=self.tenant_id,
            resource_id=connector_id if isinstance(connector_id, str) and connector_id else name,
            resource_type="connector",
            display_name=config.get("name") or name,
            parent_id=cluster_id,
            status="active",
            last_seen_at=run.now,
            metadata={
                "env_id": env,
                "connector_name": name,
                "connector_class": config.get("connector.class"),
                "state": dig(entry, "status", "connector", "state"),
                **connector_auth(config),
            },
        )

    def _schema_registry(self, run: _Run, item: Any) -> Resource:
        spec = dig(item, "spec") or {}
        return self._env_scoped(
            run,
            item,
            "schema_registry",
            {
                "package": dig(spec, "package"),
                "http_endpoint": dig(spec, "http_endpoint"),
                "resource_name": dig(item, "metadata", "resource_name"),
            },
        )

    def _ksqldb(self, run: _Run, item: Any) -> Resource:
        spec = dig(item, "spec") or {}
        owner = dig(spec, "credential_identity", "id")
        return self._env_scoped(
            run,
            item,
            "ksqldb_cluster",
            {"kafka_cluster_id": dig(spec, "kafka_cluster", "id"), "csu": dig(spec, "csu")},
            owner_id=owner if isinstance(owner, str) and owner else KSQLDB_OWNER_UNKNOWN,
        )

    def _pool(self, run: _Run, item: Any) -> Resource:
        spec = dig(item, "spec") or {}
        return self._env_scoped(
            run,
            item,
            "flink_compute_pool",
            {
                "resource_name": dig(item, "metadata", "resource_name"),
                "max_cfu": dig(spec, "max_cfu"),
                "is_allocatable": _lower(dig(spec, "region")) in self.flink_regions,
            },
        )

    # -- flink statements ------------------------------------------------------------------------------------

    def _gather_statements(self, run: _Run, pools: list[Resource]) -> None:
        """One statement listing per (regional API, organization, environment) holding credentialed pools."""
        groups: dict[tuple[str, str, str], list[Resource]] = {}
        for pool in pools:
            region = self.flink_regions.get(pool.region or "")
            if region is None:
                continue
            match = _ORG_IN_CRN.search(str(pool.metadata.get("resource_name") or ""))
            if match is None:
                crn = pool.metadata.get("resource_name")
                run.fail(
                    ("flink_statement",),
                    f"flink compute pool {pool.resource_id}: CRN {crn!r} names no organization",
                )
                continue
            base_url = region.base_url or f"https://flink.{pool.region}.{pool.cloud}.confluent.cloud"
            groups.setdefault((base_url, match.group(1), pool.parent_id or ""), []).append(pool)

        clients: dict[str, CCloudClient] = {}
        try:
            for (base_url, org, env), group in sorted(groups.items()):
                if base_url not in clients:
                    region = self.flink_regions[group[0].region or ""]
                    clients[base_url] = CCloudClient(
                        replace(self.http_settings, base_url=base_url),
                        region.key,
                        region.secret,
                        self.client.tenant,
                        budget=self.client.budget,
                    )
                client = clients[base_url]
                path = f"/sql/v1/organizations/{org}/environments/{env}/statements"
                only_pool = group[0].resource_id if len(group) == 1 else ""
                statements = run.fetch(
                    f"{base_url}{path}",
                    ("flink_statement",),
                    lambda c=client, p=path, e=env, pool=only_pool: [
                        self._statement(run, e, pool, item) for item in c.list(p)
                    ],
                )
                run.keep_resources(statements or [])
        finally:
            for client in clients.values():
                client.close()

    def _statement(self, run: _Run, env: str, default_pool: str, item: Any) -> Resource:
        if not isinstance(item, dict):
            raise UnreadableItem(f"a statement is not an object: {str(item)[:120]}")
        name = dig(item, "name")
        pool_id = dig(item, "spec", "compute_pool_id") or default_pool
        uid = dig(item, "metadata", "uid")
        statement_id = uid or name or f"flink_stmt_unknown_{row_hash({'pool': pool_id, 'item': item})}"
        phase = str(dig(item, "status", "phase") or "").upper()
        return self._resource(
            run,
            item,
            "flink_statement",
            resource_id=statement_id,
            display_name=name,
            parent_id=pool_id or None,
            owner_id=dig(item, "spec", "principal"),
            metadata={
                "env_id": env,
                "compute_pool_id": pool_id,
                "statement_name": name,
                "phase": phase or None,
                "is_stopped": phase in STOPPED_PHASES,
            },
        )

    # -- identities ------------------------------------------------------------------------------------------

    def _identity(
        self, run: _Run, item: Any, identity_type: str, display_name: Any, **metadata: Any
    ) -> Identity:
        return Identity(
            ecosystem=ECOSYSTEM,
            tenant_id=self.tenant_id,
            identity_id=_item_id(item),
            identity_type=identity_type,
            display_name=display_name if isinstance(display_name, str) else None,
            created_at=parse_timestamp(dig(item, "metadata", "created_at")),
            last_seen_at=run.now,
            metadata=metadata,
        )

    def _gather_identities(self, run: _Run) -> bool:
        """Gather every identity kind; True only when every identity endpoint succeeded."""
        errors_before = len(run.errors)
        feeds = (IDENTITIES,)

        def service_account(r: _Run, item: Any) -> Identity:
            return self._identity(
                r, item, "service_account", dig(item, "display_name"), description=dig(item, "description")
            )

        def user(r: _Run, item: Any) -> Identity:
            return self._identity(
                r, item, "user", dig(item, "full_name"), resource_name=dig(item, "metadata", "resource_name")
            )

        def api_key(r: _Run, item: Any) -> Identity:
            spec = dig(item, "spec") or {}
            return self._identity(
                r,
                item,
                "api_key",
                dig(spec, "display_name") or dig(spec, "description"),
                owner_id=dig(spec, "owner", "id"),
                resource_id=dig(spec, "resource", "id"),
                description=dig(spec, "description"),
            )

        def provider(r: _Run, item: Any) -> Identity:
            return self._identity(
                r, item, "identity_provider", dig(item, "display_name"), description=dig(item, "description")
            )

        run.keep_identities(self._list(run, "/iam/v2/service-accounts", {}, feeds, service_account) or [])
        run.keep_identities(self._list(run, "/iam/v2/users", {}, feeds, user) or [])
        run.keep_identities(self._list(run, "/iam/v2/api-keys", {}, feeds, api_key) or [])
        providers = self._list(run, "/iam/v2/identity-providers", {}, feeds, provider) or []
        run.keep_identities(providers)
        for provider_identity in providers:
            provider_id = provider_identity.identity_id

            def pool(r: _Run, item: Any, provider_id: str = provider_id) -> Identity:
                return self._identity(
                    r,
                    item,
                    "identity_pool",
                    dig(item, "display_name"),
                    provider_id=provider_id,
                    description=dig(item, "description"),
                )

            path = f"/iam/v2/identity-providers/{provider_id}/identity-pools"
            run.keep_identities(self._list(run, path, {}, feeds, pool) or [])
        return len(run.errors) == errors_before
