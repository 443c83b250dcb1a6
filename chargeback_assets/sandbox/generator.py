"""A deterministic simulated Confluent Cloud organization, in three sizes.

Everything is drawn from generators seeded by stable strings (never `hash()` of a str), so the same
(size, seed, end_date, days) gives byte-identical objects, costs and metrics in any process.
The objects are shaped like the recorded API responses in contracts/ccloud (ids, CRNs, ObjectReferences),
and carry exactly the fields the chargeback client reads: connector auth modes, ksqlDB credential_identity,
Flink statement principals, API key owner/resource, compute-pool CRNs with organization=<uuid>.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from chargeback_assets.sandbox.organization import JsonObject, Organization
from chargeback_assets.sandbox.usage import GeneratedUsage, Profile, Series, stable_int

API = "https://api.confluent.cloud"
CRN = "crn://confluent.cloud"
MASKED = "****************"
CENT4 = Decimal("0.0001")

REQUEST_BYTES = "confluent_kafka_server_request_bytes"
RESPONSE_BYTES = "confluent_kafka_server_response_bytes"
FLINK_CFU = "confluent_flink_num_cfu"
TOPIC_RECEIVED_BYTES = "confluent_kafka_server_received_bytes"
TOPIC_SENT_BYTES = "confluent_kafka_server_sent_bytes"
TOPIC_RETAINED_BYTES = "confluent_kafka_server_retained_bytes"
INTERNAL_TOPICS = ("__consumer_offsets", "_confluent-command")
"""Served with traffic, as Confluent exports them; the default `exclude_topic_patterns` leave them out."""
TOPIC_NAMES = ("orders", "payments", "clicks", "inventory", "shipments", "audit", "users", "sessions")


@dataclass(frozen=True, slots=True)
class SizeSpec:
    environments: int
    clusters: int
    service_accounts: int
    users: int
    api_keys: int
    principals_per_cluster: tuple[int, int]
    connectors_per_cluster: tuple[int, int]
    pools_per_environment: tuple[int, int]
    statements_per_pool: tuple[int, int]
    identity_providers: int
    topics_per_cluster: int = 5


SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec(2, 2, 12, 4, 22, (10, 10), (3, 3), (1, 1), (3, 4), 1),
    "medium": SizeSpec(3, 10, 200, 20, 500, (10, 60), (2, 4), (1, 2), (3, 6), 2, 10),
    "large": SizeSpec(10, 50, 2000, 100, 4000, (10, 60), (1, 4), (1, 2), (3, 6), 3, 20),
}

REGIONS = (("AWS", "us-east-1"), ("GCP", "us-central1"), ("AZURE", "eastus"), ("AWS", "eu-west-1"))
CONNECTOR_CLASSES = (
    ("S3_SINK", "sink"),
    ("PostgresCdcSource", "source"),
    ("BigQuerySink", "sink"),
    ("DatagenSource", "source"),
    ("ElasticsearchSink", "sink"),
)
# Auth mode of the n-th connector, cycled so that every organization (even `small`) has each case.
CONNECTOR_AUTH_CYCLE = (
    "SERVICE_ACCOUNT",
    "KAFKA_API_KEY",
    "SERVICE_ACCOUNT",
    "MASKED",
    "KAFKA_API_KEY",
    "NONE",
)
STATEMENT_PHASES = ("RUNNING", "COMPLETED", "RUNNING", "STOPPED")
METRIC_STEPS_S = (60, 120, 180, 300)


def generate_org(
    size: str = "small",
    seed: int = 7,
    end_date: date | None = None,
    days: int = 35,
    service_accounts: int | None = None,
) -> Organization:
    """The organization of `size` whose data covers the UTC days [end_date - days, end_date).

    `service_accounts` replaces the size's count, so a benchmark can grow one dimension of the work alone.
    """
    if size not in SIZES:
        raise ValueError(f"sandbox size {size!r} is not one of {sorted(SIZES)}")
    if days < 1:
        raise ValueError(f"sandbox days must be at least 1, got {days}")
    spec = SIZES[size]
    if service_accounts is not None:
        if service_accounts < 1:
            raise ValueError(f"sandbox service_accounts must be at least 1, got {service_accounts}")
        spec = replace(spec, service_accounts=service_accounts)
    end = end_date or datetime.now(UTC).date()
    return _Builder(spec, size, seed, end - timedelta(days=days), end).build()


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _ref(id_: str, related: str, resource_name: str, **extra: str) -> JsonObject:
    return {"id": id_, **extra, "related": related, "resource_name": resource_name}


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT4, rounding=ROUND_HALF_UP)


class _Builder:
    def __init__(self, spec: SizeSpec, size: str, seed: int, start: date, end: date) -> None:
        self.spec = spec
        self.seed = seed
        self.start, self.end = start, end
        self.start_dt, self.end_dt = _midnight(start), _midnight(end)
        self.rng = random.Random(stable_int("sandbox-objects", size, seed))
        self.org_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.org_crn = f"{CRN}/organization={self.org_id}"
        self._ids: set[str] = set()
        self.profiles: dict[Series, Profile] = {}
        self.keys_by_cluster: dict[str, list[JsonObject]] = {}
        self.principals_by_cluster: dict[str, list[JsonObject]] = {}
        self.traffic_by_cluster: dict[str, dict[str, list[Series]]] = {}

    # ids and times --------------------------------------------------------------------------------

    def new_id(
        self, prefix: str, length: int = 6, alphabet: str = string.ascii_lowercase + string.digits
    ) -> str:
        while True:
            candidate = prefix + "".join(self.rng.choices(alphabet, k=length))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def created_before_range(self) -> datetime:
        return self.start_dt - timedelta(days=self.rng.randint(20, 700), seconds=self.rng.randint(0, 86_399))

    def created_in_range(self, after: datetime | None = None) -> datetime:
        lo = max(self.start_dt, after or self.start_dt)
        span = max(1, int((self.end_dt - lo).total_seconds()) - 1)
        return lo + timedelta(seconds=self.rng.randint(1, span), microseconds=self.rng.randint(0, 999_999))

    def meta(self, self_path: str, resource_name: str, created: datetime) -> JsonObject:
        updated = created + timedelta(seconds=self.rng.randint(0, 3600))
        return {
            "self": f"{API}{self_path}",
            "resource_name": resource_name,
            "created_at": _ts(created),
            "updated_at": _ts(min(updated, max(created, self.end_dt - timedelta(seconds=1)))),
        }

    # objects --------------------------------------------------------------------------------------

    def build(self) -> Organization:
        organization = {
            "api_version": "org/v2",
            "kind": "Organization",
            "id": self.org_id,
            "metadata": self.meta(
                f"/org/v2/organizations/{self.org_id}", self.org_crn, self.created_before_range()
            ),
            "display_name": "sandbox-org",
            "jit_enabled": False,
        }
        environments = [self.environment(i) for i in range(self.spec.environments)]
        service_accounts = [self.service_account(i) for i in range(self.spec.service_accounts)]
        users = [self.user(i) for i in range(self.spec.users)]
        clusters = [
            self.kafka_cluster(i, environments[i % len(environments)]) for i in range(self.spec.clusters)
        ]
        registries = [self.schema_registry(i, env) for i, env in enumerate(environments)]
        api_keys = self.api_keys(clusters, registries, service_accounts, users)
        connectors = self.connectors(clusters)
        ksqldb = [
            self.ksqldb_cluster(i, env, clusters, service_accounts + users)
            for i, env in enumerate(environments)
            if any(c["spec"]["environment"]["id"] == env["id"] for c in clusters)
        ]
        pools: list[JsonObject] = []
        for env in environments:
            count = self.rng.randint(*self.spec.pools_per_environment)
            pools.extend(self.compute_pool(len(pools), env) for _ in range(count))
        statements = [
            stmt for pool in pools for stmt in self.flink_statements(pool, service_accounts + users)
        ]
        providers = [self.identity_provider(i) for i in range(self.spec.identity_providers)]
        identity_pools = {
            p["id"]: [self.identity_pool(p, j) for j in range(2 + i % 2)] for i, p in enumerate(providers)
        }
        for index, cluster in enumerate(clusters):
            self.kafka_usage(cluster)
            if index < len(clusters) - 1:  # the last cluster exports no topic metrics at all
                self.topic_usage(cluster)
        objects = {
            "organizations": [organization],
            "environments": environments,
            "kafka_clusters": clusters,
            "schema_registries": registries,
            "ksqldb_clusters": ksqldb,
            "compute_pools": pools,
            "flink_statements": statements,
            "service_accounts": service_accounts,
            "users": users,
            "api_keys": api_keys,
            "identity_providers": providers,
        }
        costs = _CostWriter(self.seed, self.org_id, objects, connectors).rows(self.start, self.end)
        return Organization(
            organization_id=self.org_id,
            objects=objects,
            identity_pools=identity_pools,
            connectors=connectors,
            costs=costs,
            usage=GeneratedUsage(self.seed, self.profiles),
        )

    def environment(self, index: int) -> JsonObject:
        env_id = self.new_id("env-")
        return {
            "api_version": "org/v2",
            "kind": "Environment",
            "id": env_id,
            "metadata": self.meta(
                f"/org/v2/environments/{env_id}",
                f"{self.org_crn}/environment={env_id}",
                self.created_before_range(),
            ),
            "display_name": ("production", "staging", "development")[index % 3]
            + (f"-{index}" if index >= 3 else ""),
            "stream_governance_config": {"package": "ADVANCED" if index % 2 == 0 else "ESSENTIALS"},
        }

    def identity_created(self, index: int) -> datetime:
        """Every seventh identity appears part-way through the date range."""
        return self.created_in_range() if index % 7 == 3 else self.created_before_range()

    def service_account(self, index: int) -> JsonObject:
        sa_id = self.new_id("sa-")
        team = ("payments", "orders", "search", "analytics", "platform", "fraud", "ml")[index % 7]
        return {
            "api_version": "iam/v2",
            "kind": "ServiceAccount",
            "id": sa_id,
            "metadata": self.meta(
                f"/iam/v2/service-accounts/{sa_id}",
                f"{self.org_crn}/service-account={sa_id}",
                self.identity_created(index),
            ),
            "display_name": f"{team}-app-{index:04d}",
            "description": f"Service account of the {team} team",
        }

    def user(self, index: int) -> JsonObject:
        user_id = self.new_id("u-")
        return {
            "api_version": "iam/v2",
            "kind": "User",
            "id": user_id,
            "metadata": self.meta(
                f"/iam/v2/users/{user_id}", f"{self.org_crn}/user={user_id}", self.identity_created(index)
            ),
            "email": f"engineer{index:03d}@example.com",
            "full_name": f"Engineer {index:03d}",
            "auth_type": "AUTH_TYPE_SSO" if index % 2 else "AUTH_TYPE_LOCAL",
        }

    def kafka_cluster(self, index: int, env: JsonObject) -> JsonObject:
        lkc = self.new_id("lkc-")
        cloud, region = REGIONS[index % len(REGIONS)]
        dedicated = index % 2 == 0
        env_id = env["id"]
        config: JsonObject = (
            {"kind": "Dedicated", "cku": self.rng.randint(1, 4)} if dedicated else {"kind": "Standard"}
        )
        status: JsonObject = {"phase": "PROVISIONED"}
        if dedicated:
            status["cku"] = config["cku"]
        host = f"pkc-{lkc[4:]}.{region}.{cloud.lower()}.confluent.cloud"
        return {
            "api_version": "cmk/v2",
            "kind": "Cluster",
            "id": lkc,
            "metadata": self.meta(
                f"/cmk/v2/clusters/{lkc}",
                f"{self.org_crn}/environment={env_id}/cloud-cluster={lkc}/kafka={lkc}",
                self.created_before_range(),
            ),
            "spec": {
                "display_name": f"{env['display_name']}-{'dedicated' if dedicated else 'standard'}-{index}",
                "availability": "MULTI_ZONE" if dedicated else "SINGLE_ZONE",
                "cloud": cloud,
                "region": region,
                "config": config,
                "kafka_bootstrap_endpoint": f"SASL_SSL://{host}:9092",
                "http_endpoint": f"https://{host}:443",
                "environment": _ref(
                    env_id, f"{API}/org/v2/environments/{env_id}", f"{self.org_crn}/environment={env_id}"
                ),
            },
            "status": status,
        }

    def schema_registry(self, index: int, env: JsonObject) -> JsonObject:
        lsrc = self.new_id("lsrc-")
        cloud, region = REGIONS[index % len(REGIONS)]
        env_id = env["id"]
        endpoint = f"https://psrc-{lsrc[5:]}.{region}.{cloud.lower()}.confluent.cloud"
        return {
            "api_version": "srcm/v3",
            "kind": "Cluster",
            "id": lsrc,
            "metadata": self.meta(
                f"/srcm/v3/clusters/{lsrc}",
                f"{self.org_crn}/environment={env_id}/schema-registry={lsrc}",
                self.created_before_range(),
            ),
            "spec": {
                "display_name": "Stream Governance Package",
                "package": env["stream_governance_config"]["package"],
                "http_endpoint": endpoint,
                "catalog_http_endpoint": endpoint,
                "cloud": cloud,
                "region": region,
                "environment": _ref(
                    env_id, f"{API}/org/v2/environments/{env_id}", f"{self.org_crn}/environment={env_id}"
                ),
            },
            "status": {"phase": "PROVISIONED"},
        }

    def api_key(self, owner: JsonObject, resource: JsonObject, created: datetime) -> JsonObject:
        key_id = self.new_id("", 16, string.ascii_uppercase + string.digits)
        owner_kind, owner_path, owner_crn = (
            ("ServiceAccount", "service-accounts", "service-account")
            if owner["kind"] == "ServiceAccount"
            else ("User", "users", "user")
        )
        is_kafka = resource["id"].startswith("lkc-")
        env_id = resource["spec"]["environment"]["id"]
        return {
            "api_version": "iam/v2",
            "kind": "ApiKey",
            "id": key_id,
            "metadata": self.meta(
                f"/iam/v2/api-keys/{key_id}",
                f"{self.org_crn}/{owner_crn}={owner['id']}/api-key={key_id}",
                created,
            ),
            "spec": {
                "display_name": f"{owner.get('display_name', owner.get('full_name'))} on {resource['id']}",
                "description": "Key created by the sandbox",
                "secret": "",
                "owner": _ref(
                    owner["id"],
                    f"{API}/iam/v2/{owner_path}/{owner['id']}",
                    f"{self.org_crn}/{owner_crn}={owner['id']}",
                    api_version="iam/v2",
                    kind=owner_kind,
                ),
                "resource": _ref(
                    resource["id"],
                    f"{API}/{'cmk/v2/clusters' if is_kafka else 'srcm/v3/clusters'}/{resource['id']}",
                    resource["metadata"]["resource_name"],
                    environment=env_id,
                    api_version="cmk/v2" if is_kafka else "srcm/v3",
                    kind="Cluster",
                ),
            },
        }

    def key_created(self, owner: JsonObject) -> datetime:
        owner_created = datetime.fromisoformat(owner["metadata"]["created_at"])
        if owner_created >= self.start_dt or self.rng.random() < 0.1:
            return self.created_in_range(after=owner_created)
        return owner_created + timedelta(hours=self.rng.randint(1, 48))

    def api_keys(
        self,
        clusters: list[JsonObject],
        registries: list[JsonObject],
        service_accounts: list[JsonObject],
        users: list[JsonObject],
    ) -> list[JsonObject]:
        """One key per (cluster, principal) pair, one per registry, then more keys up to the size's count."""
        population = service_accounts + users
        keys: list[JsonObject] = []
        for cluster in clusters:
            count = min(len(population), self.rng.randint(*self.spec.principals_per_cluster))
            principals = self.rng.sample(population, count)
            self.principals_by_cluster[cluster["id"]] = principals
            cluster_keys = [self.api_key(p, cluster, self.key_created(p)) for p in principals]
            self.keys_by_cluster[cluster["id"]] = cluster_keys
            keys.extend(cluster_keys)
        keys.extend(
            self.api_key(self.rng.choice(service_accounts), r, self.created_before_range())
            for r in registries
        )
        while len(keys) < self.spec.api_keys:
            cluster = self.rng.choice(clusters)
            owner = self.rng.choice(self.principals_by_cluster[cluster["id"]])
            extra = self.api_key(owner, cluster, self.key_created(owner))
            self.keys_by_cluster[cluster["id"]].append(extra)
            keys.append(extra)
        return keys

    def connectors(self, clusters: list[JsonObject]) -> dict[str, dict[str, dict[str, JsonObject]]]:
        result: dict[str, dict[str, dict[str, JsonObject]]] = {}
        serial = 0
        for cluster in clusters:
            env_id = cluster["spec"]["environment"]["id"]
            entries: dict[str, JsonObject] = {}
            for _ in range(self.rng.randint(*self.spec.connectors_per_cluster)):
                mode = CONNECTOR_AUTH_CYCLE[serial % len(CONNECTOR_AUTH_CYCLE)]
                entry = self.connector(cluster, serial, mode)
                entries[entry["info"]["name"]] = entry
                serial += 1
            result.setdefault(env_id, {})[cluster["id"]] = entries
        return result

    def connector(self, cluster: JsonObject, serial: int, mode: str) -> JsonObject:
        lcc = self.new_id("lcc-")
        connector_class, direction = CONNECTOR_CLASSES[serial % len(CONNECTOR_CLASSES)]
        name = f"{connector_class.lower().replace('_', '-')}-{serial}"
        tasks = self.rng.randint(1, 4)
        spec = cluster["spec"]
        config = {
            "cloud.environment": "prod",
            "cloud.provider": spec["cloud"].lower(),
            "connector.class": connector_class,
            "kafka.endpoint": spec["kafka_bootstrap_endpoint"],
            "kafka.region": spec["region"],
            "name": name,
            "tasks.max": str(tasks),
            "kafka.api.key": MASKED,
            "kafka.api.secret": MASKED,
        }
        if mode == "SERVICE_ACCOUNT":
            sas = [p for p in self.principals_by_cluster[cluster["id"]] if p["kind"] == "ServiceAccount"]
            config["kafka.auth.mode"] = "SERVICE_ACCOUNT"
            config["kafka.service.account.id"] = self.rng.choice(sas)["id"]
        elif mode in ("KAFKA_API_KEY", "MASKED"):
            config["kafka.auth.mode"] = "KAFKA_API_KEY"
            if mode == "KAFKA_API_KEY":
                config["kafka.api.key"] = self.rng.choice(self.keys_by_cluster[cluster["id"]])["id"]
        else:  # no auth mode and no credential: the client cannot tell whom to charge
            config["kafka.api.key"] = ""
            config["kafka.api.secret"] = ""
        state = "PAUSED" if serial % 5 == 4 else "RUNNING"
        worker = f"{lcc}-worker"
        return {
            "id": {"id": lcc, "id_type": "ID"},
            "info": {"name": name, "type": direction, "config": dict(sorted(config.items()))},
            "status": {
                "name": name,
                "type": direction,
                "connector": {"state": state, "worker_id": worker, "trace": ""},
                "tasks": [{"id": t, "state": state, "worker_id": worker, "msg": ""} for t in range(tasks)],
            },
        }

    def ksqldb_cluster(
        self, index: int, env: JsonObject, clusters: list[JsonObject], identities: list[JsonObject]
    ) -> JsonObject:
        lksqlc = self.new_id("lksqlc-")
        env_id = env["id"]
        kafka = next(c for c in clusters if c["spec"]["environment"]["id"] == env_id)
        owner = self.rng.choice([i for i in identities if (i["kind"] == "User") == (index % 2 == 1)])
        owner_path = "users" if owner["kind"] == "User" else "service-accounts"
        owner_crn = "user" if owner["kind"] == "User" else "service-account"
        return {
            "api_version": "ksqldbcm/v2",
            "kind": "Cluster",
            "id": lksqlc,
            "metadata": self.meta(
                f"/ksqldbcm/v2/clusters/{lksqlc}",
                f"{self.org_crn}/environment={env_id}/cloud-cluster={kafka['id']}/ksql={lksqlc}",
                self.created_before_range(),
            ),
            "spec": {
                "display_name": f"ksqldb-{index}",
                "use_detailed_processing_log": True,
                "csu": (1, 2, 4, 8, 12)[index % 5],
                "kafka_cluster": _ref(
                    kafka["id"],
                    f"{API}/cmk/v2/clusters/{kafka['id']}",
                    kafka["metadata"]["resource_name"],
                    environment=env_id,
                    api_version="cmk/v2",
                    kind="Cluster",
                ),
                "credential_identity": _ref(
                    owner["id"],
                    f"{API}/iam/v2/{owner_path}/{owner['id']}",
                    f"{self.org_crn}/{owner_crn}={owner['id']}",
                    api_version="iam/v2",
                    kind=owner["kind"],
                ),
                "environment": _ref(
                    env_id,
                    f"{API}/org/v2/environments/{env_id}",
                    f"{self.org_crn}/environment={env_id}",
                    api_version="org/v2",
                    kind="Environment",
                ),
            },
            "status": {
                "phase": "PROVISIONED",
                "is_paused": False,
                "storage": 125,
                "topic_prefix": f"pksqlc-{lksqlc[7:]}",
                "http_endpoint": f"https://pksqlc-{lksqlc[7:]}.us-east-1.aws.confluent.cloud:443",
            },
        }

    def compute_pool(self, index: int, env: JsonObject) -> JsonObject:
        lfcp = self.new_id("lfcp-")
        cloud, region = REGIONS[index % len(REGIONS)]
        env_id = env["id"]
        max_cfu = (5, 10, 20, 30, 40, 50)[index % 6]
        return {
            "api_version": "fcpm/v2",
            "kind": "ComputePool",
            "id": lfcp,
            "metadata": self.meta(
                f"/fcpm/v2/compute-pools/{lfcp}",
                f"{self.org_crn}/environment={env_id}/flink-region={cloud.lower()}.{region}/compute-pool={lfcp}",
                self.created_before_range(),
            ),
            "spec": {
                "display_name": f"pool-{env['display_name']}-{index}",
                "cloud": cloud,
                "region": region,
                "max_cfu": max_cfu,
                "enable_ai": False,
                "default_pool": index == 0,
                "environment": _ref(
                    env_id, f"{API}/org/v2/environments/{env_id}", f"{self.org_crn}/environment={env_id}"
                ),
            },
            "status": {"phase": "PROVISIONED", "current_cfu": min(max_cfu, 2)},
        }

    def flink_statements(self, pool: JsonObject, identities: list[JsonObject]) -> list[JsonObject]:
        env_id = pool["spec"]["environment"]["id"]
        cloud, region = pool["spec"]["cloud"].lower(), pool["spec"]["region"]
        statements = []
        for j in range(self.rng.randint(*self.spec.statements_per_pool)):
            name = f"stmt-{pool['id'][5:]}-{j}"
            phase = STATEMENT_PHASES[j % len(STATEMENT_PHASES)]
            created = self.created_before_range() if j % 3 != 2 else self.created_in_range()
            owner = self.rng.choice(identities)
            status: JsonObject = {"phase": phase, "detail": ""}
            active_until = self.end_dt
            if phase != "RUNNING":
                active_until = self.created_in_range(after=created)
                status["end_time"] = _ts(active_until)
            statements.append(
                {
                    "api_version": "sql/v1",
                    "kind": "Statement",
                    "name": name,
                    "organization_id": self.org_id,
                    "environment_id": env_id,
                    "metadata": {
                        "self": f"https://flink.{region}.{cloud}.confluent.cloud/sql/v1/organizations/"
                        f"{self.org_id}/environments/{env_id}/statements/{name}",
                        "created_at": _ts(created),
                        "updated_at": _ts(created),
                        "uid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                        "resource_version": "1",
                        "labels": {},
                    },
                    "spec": {
                        "statement": f"INSERT INTO sink_{j} SELECT * FROM source_{j};",
                        "compute_pool_id": pool["id"],
                        "principal": owner["id"],
                        "properties": {"sql.current-catalog": env_id},
                        "stopped": phase == "STOPPED",
                    },
                    "status": status,
                }
            )
            series = Series(FLINK_CFU, (("compute_pool_id", pool["id"]), ("flink_statement_name", name)))
            self.profiles[series] = Profile(
                "cfu",
                float(self.rng.randint(1, 4)),
                60_000,
                max(_ms(self.start_dt), _ceil_minute_ms(created)),
                max(_ms(self.start_dt), _ms(active_until)),
            )
        return statements

    def identity_provider(self, index: int) -> JsonObject:
        op = self.new_id("op-", 4, string.ascii_letters + string.digits)
        return {
            "api_version": "iam/v2",
            "kind": "IdentityProvider",
            "id": op,
            "metadata": self.meta(
                f"/iam/v2/identity-providers/{op}",
                f"{self.org_crn}/identity-provider={op}",
                self.created_before_range(),
            ),
            "display_name": f"idp-{index}",
            "description": "OAuth provider of the sandbox",
            "issuer": f"https://login.example.com/{index}/",
            "jwks_uri": f"https://login.example.com/{index}/keys",
            "identity_claim": "claims.sub",
            "state": "ENABLED",
        }

    def identity_pool(self, provider: JsonObject, index: int) -> JsonObject:
        pool_id = self.new_id("pool-", 4, string.ascii_letters + string.digits)
        op = provider["id"]
        return {
            "api_version": "iam/v2",
            "kind": "IdentityPool",
            "id": pool_id,
            "metadata": self.meta(
                f"/iam/v2/identity-providers/{op}/identity-pools/{pool_id}",
                f"{self.org_crn}/identity-provider={op}/identity-pool={pool_id}",
                self.identity_created(index),
            ),
            "display_name": f"{provider['display_name']}-pool-{index}",
            "description": "Workloads authenticated through OAuth",
            "identity_claim": "claims.sub",
            "filter": f'claims.aud=="confluent" && claims.group=="team-{index}"',
            "principal": pool_id,
            "state": "ENABLED",
        }

    # usage ----------------------------------------------------------------------------------------

    def kafka_usage(self, cluster: JsonObject) -> None:
        """Request/response bytes per principal that holds a key on the cluster, from its first key on."""
        step_ms = self.rng.choice(METRIC_STEPS_S) * 1000
        first_key_ms: dict[str, int] = {}
        for key in self.keys_by_cluster[cluster["id"]]:
            owner = key["spec"]["owner"]["id"]
            created = _ceil_minute_ms(datetime.fromisoformat(key["metadata"]["created_at"]))
            first_key_ms[owner] = min(created, first_key_ms.get(owner, created))
        for principal in self.principals_by_cluster[cluster["id"]]:
            active_from = max(_ms(self.start_dt), first_key_ms[principal["id"]])
            kind = "bursty" if self.rng.random() < 0.15 else "bytes"
            for metric, type_label, scale in (
                (REQUEST_BYTES, "Produce", 1.0),
                (RESPONSE_BYTES, "Fetch", 2.5),
            ):
                labels = (
                    ("kafka_id", cluster["id"]),
                    ("principal_id", principal["id"]),
                    ("type", type_label),
                )
                level = float(int(10 ** self.rng.uniform(3.5, 6.5) * scale))
                series = Series(metric, labels)
                self.profiles[series] = Profile(kind, level, step_ms, active_from, _ms(self.end_dt))
                self.traffic_by_cluster.setdefault(cluster["id"], {}).setdefault(metric, []).append(series)

    def topic_usage(self, cluster: JsonObject) -> None:
        """Per-topic bytes that add up to the cluster's per-principal traffic, and retained bytes.

        Each topic takes a fixed share of every step's produce (and fetch) bytes of all principals, so the
        topics' received bytes sum to the principals' request bytes (less rounding down), internal topics
        included. The topics of the cluster: `topics_per_cluster` named ones, one created at noon of the
        middle day, one idle topic holding data but with no traffic, and the internal topics. Drawn from a
        generator of their own, so the organization's other objects and series are unchanged.
        """
        rng = random.Random(stable_int("sandbox-topics", self.seed, cluster["id"]))
        names = [
            TOPIC_NAMES[i % len(TOPIC_NAMES)] + ("" if i < len(TOPIC_NAMES) else f"-{i // len(TOPIC_NAMES)}")
            for i in range(self.spec.topics_per_cluster)
        ]
        late, idle = "events-late", "archive-idle"
        busy = [*INTERNAL_TOPICS, *names, late]
        middle = self.start_dt + (self.end_dt - self.start_dt) // 2
        born = {late: _ms(middle.replace(hour=12, minute=0, second=0, microsecond=0))}
        until = _ms(self.end_dt)
        traffic = self.traffic_by_cluster[cluster["id"]]
        for metric, sources in ((TOPIC_RECEIVED_BYTES, REQUEST_BYTES), (TOPIC_SENT_BYTES, RESPONSE_BYTES)):
            weights = [rng.uniform(0.05, 1.0) ** 2 for _ in busy]
            total = sum(weights)
            source_series = tuple(traffic[sources])
            step_ms = self.profiles[source_series[0]].step_ms
            for topic, weight in zip(busy, weights, strict=True):
                self.profiles[Series(metric, (("kafka_id", cluster["id"]), ("topic", topic)))] = Profile(
                    "share",
                    weight / total,
                    step_ms,
                    born.get(topic, _ms(self.start_dt)),
                    until,
                    sources=source_series,
                )
        for topic in [*busy, idle]:
            level = float(int(10 ** rng.uniform(6, 9)))
            self.profiles[Series(TOPIC_RETAINED_BYTES, (("kafka_id", cluster["id"]), ("topic", topic)))] = (
                Profile("bytes", level, 300_000, born.get(topic, _ms(self.start_dt)), until)
            )


def _ceil_minute_ms(moment: datetime) -> int:
    ms = _ms(moment)
    return -(-ms // 60_000) * 60_000


# costs -------------------------------------------------------------------------------------------


class _CostWriter:
    """Daily Cost rows for every product line, each day drawn from its own seed so days are independent."""

    def __init__(
        self,
        seed: int,
        org_id: str,
        objects: dict[str, list[JsonObject]],
        connectors: dict[str, dict[str, dict[str, JsonObject]]],
    ) -> None:
        self.seed = seed
        self.org_id = org_id
        self.objects = objects
        self.connectors = [
            (env_id, entry)
            for env_id, by_cluster in connectors.items()
            for entries in by_cluster.values()
            for entry in entries.values()
        ]

    def rows(self, start: date, end: date) -> list[JsonObject]:
        rows: list[JsonObject] = []
        day = start
        while day < end:
            rows.extend(self.day_rows(day))
            day += timedelta(days=1)
        return rows

    def day_rows(self, day: date) -> list[JsonObject]:
        rng = random.Random(stable_int("sandbox-costs", self.org_id, self.seed, day.isoformat()))
        out: list[JsonObject] = []

        def row(
            product: str, line_type: str, unit: str, price: str, quantity: Decimal, **extra: object
        ) -> None:
            out.append(_cost_row(day, product, line_type, unit, Decimal(price), quantity, **extra))

        def gb(lo: int, hi: int) -> Decimal:
            return Decimal(rng.randint(lo * 100, hi * 100)) / 100

        for index, cluster in enumerate(self.objects["kafka_clusters"]):
            res = _billing_resource(
                cluster["id"], cluster["spec"]["display_name"], cluster["spec"]["environment"]["id"]
            )
            config = cluster["spec"]["config"]
            if config["kind"] == "Dedicated":
                net = {"network_access_type": "PRIVATE_LINK", "resource": res, "discount": Decimal("0.2")}
                row("KAFKA", "KAFKA_NUM_CKUS", "CKU-hour", "2.25", Decimal(24 * config["cku"]), **net)
                row("KAFKA", "KAFKA_NETWORK_READ", "GB", "0.05", gb(50, 800), **net)
                row("KAFKA", "KAFKA_NETWORK_WRITE", "GB", "0.05", gb(20, 300), **net)
                row(
                    "KAFKA",
                    "KAFKA_STORAGE",
                    "GB-hour",
                    "0.00010959",
                    Decimal(rng.randint(5000, 30000)),
                    **net,
                )
            else:
                net = {"network_access_type": "INTERNET", "resource": res}
                row("KAFKA", "KAFKA_BASE", "Hour", "1.5", Decimal(24), **net)
                row(
                    "KAFKA",
                    "KAFKA_PARTITION",
                    "Partition-hour",
                    "0.0015",
                    Decimal(24 * rng.randint(50, 400)),
                    **net,
                )
                row("KAFKA", "KAFKA_NETWORK_READ", "GB", "0.11", gb(1, 40), **net)
                row("KAFKA", "KAFKA_NETWORK_WRITE", "GB", "0.11", gb(1, 20), **net)
                row("KAFKA", "KAFKA_STORAGE", "GB-hour", "0.00013699", Decimal(rng.randint(500, 5000)), **net)
            if index == 0:
                row("CLUSTER_LINK", "CLUSTER_LINKING_PER_LINK", "Link-hour", "0.5", Decimal(24), resource=res)
                row("CLUSTER_LINK", "CLUSTER_LINKING_READ", "GB", "0.05", gb(10, 90), resource=res)
                row("CLUSTER_LINK", "CLUSTER_LINKING_WRITE", "GB", "0.05", gb(10, 90), resource=res)
                row("TABLEFLOW", "TABLEFLOW_DATA_PROCESSED", "GB", "0.04", gb(10, 120), resource=res)
                row(
                    "TABLEFLOW",
                    "TABLEFLOW_NUM_TOPICS",
                    "Topic-hour",
                    "0.1",
                    Decimal(24 * rng.randint(1, 4)),
                    resource=res,
                )
                row(
                    "TABLEFLOW",
                    "TABLEFLOW_STORAGE",
                    "GB-hour",
                    "0.00003288",
                    Decimal(rng.randint(1000, 20000)),
                    resource=res,
                )
        for env_id, entry in self.connectors:
            config = entry["info"]["config"]
            res = _billing_resource(entry["id"]["id"], entry["info"]["name"], env_id)
            tier = {
                "provider": config["cloud.provider"],
                "region": config["kafka.region"],
                "connector_type": config["connector.class"],
            }
            row("CONNECT", "CONNECT_CAPACITY", "Hour", "0.1", Decimal(24), resource=res)
            row(
                "CONNECT",
                "CONNECT_NUM_TASKS",
                "Task-hour",
                "0.034",
                Decimal(24 * int(config["tasks.max"])),
                resource=res,
            )
            row(
                "CONNECT", "CONNECT_THROUGHPUT", "GB", "0.025", gb(1, 200), resource=res, tier_dimensions=tier
            )
        for ksql in self.objects["ksqldb_clusters"]:
            res = _billing_resource(
                ksql["id"], ksql["spec"]["display_name"], ksql["spec"]["environment"]["id"]
            )
            row("KSQL", "KSQL_NUM_CSUS", "CSU-hour", "0.23", Decimal(24 * ksql["spec"]["csu"]), resource=res)
        for pool in self.objects["compute_pools"]:
            res = _billing_resource(
                pool["id"], pool["spec"]["display_name"], pool["spec"]["environment"]["id"]
            )
            row("FLINK", "FLINK_NUM_CFUS", "CFU-hour", "0.21", gb(5, 150), resource=res)
        for registry in self.objects["schema_registries"]:
            spec = registry["spec"]
            res = _billing_resource(registry["id"], spec["display_name"], spec["environment"]["id"])
            row("STREAM_GOVERNANCE", "GOVERNANCE_BASE", "Hour", "1.0", Decimal(24), resource=res)
            row(
                "STREAM_GOVERNANCE",
                "SCHEMA_REGISTRY",
                "Schema-hour",
                "0.002",
                Decimal(24 * rng.randint(10, 90)),
                resource=res,
            )
            if spec["package"] == "ADVANCED":
                region = {"provider": spec["cloud"].lower(), "region": spec["region"]}
                row(
                    "STREAM_GOVERNANCE",
                    "NUM_RULES",
                    "Rule-hour",
                    "0.023",
                    Decimal(240),
                    resource=res,
                    tier_dimensions={**region, "tier": "1-10"},
                )
                row(
                    "STREAM_GOVERNANCE",
                    "NUM_RULES",
                    "Rule-hour",
                    "0.0345",
                    Decimal(24 * rng.randint(1, 5)),
                    resource=res,
                    tier_dimensions={**region, "tier": "11+"},
                )
        row("AUDIT_LOG", "AUDIT_LOG_READ", "GB", "0.05", gb(1, 8), discount=Decimal("0.2"))
        row("SUPPORT_CLOUD_BUSINESS", "SUPPORT", "Month", "32.258", Decimal(1))
        if rng.random() < 0.3:
            row("KAFKA", "PROMO_CREDIT", "Credit", "1.0", Decimal(-25), description="KAFKA101")
        return out


def _billing_resource(resource_id: str, display_name: str, env_id: str) -> JsonObject:
    return {"id": resource_id, "display_name": display_name, "environment": {"id": env_id}}


def _cost_row(
    day: date,
    product: str,
    line_type: str,
    unit: str,
    price: Decimal,
    quantity: Decimal,
    *,
    resource: JsonObject | None = None,
    network_access_type: str | None = None,
    discount: Decimal = Decimal(0),
    tier_dimensions: dict[str, str] | None = None,
    description: str | None = None,
) -> JsonObject:
    original = _q(price * quantity)
    discount_amount = _q(original * discount)
    tier_key = ",".join(f"{k}={v}" for k, v in sorted((tier_dimensions or {}).items()))
    row_id = f"dlz-{stable_int(day, line_type, (resource or {}).get('id', ''), tier_key):016x}"
    row: JsonObject = {
        "api_version": "billing/v1",
        "kind": "Cost",
        "id": row_id,
        "start_date": day.isoformat(),
        "end_date": (day + timedelta(days=1)).isoformat(),
        "granularity": "DAILY",
        "product": product,
        "line_type": line_type,
        "price": float(price),
        "quantity": float(quantity),
        "unit": unit,
        "original_amount": float(original),
        "discount_amount": float(discount_amount),
        "amount": float(original - discount_amount),
    }
    if network_access_type:
        row["network_access_type"] = network_access_type
    if description:
        row["description"] = description
    if tier_dimensions:
        row["tier_dimensions"] = tier_dimensions
    if resource:
        row["resource"] = resource
    return row
