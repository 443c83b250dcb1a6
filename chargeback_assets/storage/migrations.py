"""Numbered schema migrations, applied in order when the database is opened.

A migration is never edited once released: a schema change is a new, higher-numbered migration. Each
describes its changes through a `Schema` (storage/dialect.py), so the one history builds SQLite and
PostgreSQL alike; money columns are declared `Money` (TEXT on SQLite, exactly as before; NUMERIC on
PostgreSQL). The caller runs `apply_migrations` inside a write transaction that holds the migration lock,
so the version check and the changes are exclusive: when two processes open a new database at once, the
second waits and then finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chargeback_assets.engine.models import UTC
from chargeback_assets.storage.dialect import Money, Schema

if TYPE_CHECKING:
    from chargeback_assets.storage.database import Source, Transaction

VERSION_TABLE = "schema_version"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Schema], None]


def _seed_tables(db: Schema) -> None:
    """The original system's tables: bill, inventory, chargeback, pipeline bookkeeping, tags, emissions."""
    scope = {"ecosystem": str, "tenant_id": str}
    db.create_table(
        "billing",
        {
            **scope,
            "line_id": str,
            "timestamp": str,
            "env_id": str,
            "resource_id": str,
            "product_type": str,
            "product_category": str,
            "quantity": Money,
            "unit_price": Money,
            "total_cost": Money,
            "currency": str,
            "granularity": str,
            "provider_prorated": int,
            "allocation_attempts": int,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "line_id"),
        defaults={"allocation_attempts": 0, "metadata_json": "{}"},
    )
    db.create_index("billing", ["ecosystem", "tenant_id", "timestamp"])

    db.create_table(
        "resources",
        {
            **scope,
            "resource_id": str,
            "resource_type": str,
            "display_name": str,
            "parent_id": str,
            "owner_id": str,
            "status": str,
            "cloud": str,
            "region": str,
            "created_at": str,
            "deleted_at": str,
            "last_seen_at": str,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "resource_id"),
        nullable=(
            "display_name",
            "parent_id",
            "owner_id",
            "cloud",
            "region",
            "created_at",
            "deleted_at",
            "last_seen_at",
        ),
    )
    db.create_index("resources", ["ecosystem", "tenant_id", "resource_type"])
    db.create_index("resources", ["ecosystem", "tenant_id", "deleted_at"])

    db.create_table(
        "identities",
        {
            **scope,
            "identity_id": str,
            "identity_type": str,
            "display_name": str,
            "status": str,
            "created_at": str,
            "deleted_at": str,
            "last_seen_at": str,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "identity_id"),
        nullable=("display_name", "created_at", "deleted_at", "last_seen_at"),
    )
    db.create_index("identities", ["ecosystem", "tenant_id", "identity_type"])
    db.create_index("identities", ["ecosystem", "tenant_id", "deleted_at"])

    db.create_table(
        "chargeback_dimensions",
        {
            "dimension_id": int,
            **scope,
            "env_id": str,
            "resource_id": str,
            "product_category": str,
            "product_type": str,
            "identity_id": str,
            "cost_type": str,
            "allocation_method": str,
            "allocation_detail": str,
        },
        pk="dimension_id",
        nullable=("resource_id", "allocation_method", "allocation_detail"),
    )
    db.create_index(
        "chargeback_dimensions",
        [
            "ecosystem", "tenant_id", "env_id", "resource_id", "product_category", "product_type",
            "identity_id", "cost_type", "allocation_method", "allocation_detail",
        ],
        unique=True,
        nulls_equal=True,
        name="idx_chargeback_dimensions_unique",
    )  # fmt: skip

    db.create_table(
        "chargeback_facts",
        {**scope, "timestamp": str, "dimension_id": int, "amount": Money, "metadata_json": str},
        pk=("timestamp", "dimension_id"),
        foreign_keys=[("dimension_id", "chargeback_dimensions", "dimension_id")],
    )
    db.create_index("chargeback_facts", ["ecosystem", "tenant_id", "timestamp"])
    db.create_index("chargeback_facts", ["dimension_id"])

    db.create_table(
        "pipeline_state",
        {
            **scope,
            "tracking_date": str,
            "billing_gathered": int,
            "resources_gathered": int,
            "chargeback_calculated": int,
            "metrics_fetch_failed": int,
            "billing_fingerprint": str,
            "billing_fingerprint_at": str,
            "calculation_id": str,
            "calculation_completed_at": str,
            "calculation_run_id": str,
        },
        pk=("ecosystem", "tenant_id", "tracking_date"),
        nullable=(
            "billing_fingerprint",
            "billing_fingerprint_at",
            "calculation_id",
            "calculation_completed_at",
            "calculation_run_id",
        ),
        defaults={
            "billing_gathered": 0,
            "resources_gathered": 0,
            "chargeback_calculated": 0,
            "metrics_fetch_failed": 0,
        },
    )

    db.create_table(
        "pipeline_runs",
        {
            **scope,
            "run_id": str,
            "tenant_name": str,
            "dates_json": str,
            "status": str,
            "started_at": str,
            "ended_at": str,
            "rows_written": int,
            "error_message": str,
        },
        pk=("ecosystem", "tenant_id", "run_id"),
        nullable=("ended_at", "error_message"),
    )
    db.create_index("pipeline_runs", ["ecosystem", "tenant_id", "started_at"])

    db.create_table(
        "custom_tags",
        {
            "tag_id": int,
            **scope,
            "entity_type": str,
            "entity_id": str,
            "tag_key": str,
            "tag_value": str,
            "created_by": str,
            "created_at": str,
        },
        pk="tag_id",
    )
    db.create_index(
        "custom_tags", ["ecosystem", "tenant_id", "entity_type", "entity_id", "tag_key"], unique=True
    )
    db.create_index("custom_tags", ["ecosystem", "tenant_id", "tag_key", "tag_value"])

    db.create_table(
        "emission_records",
        {
            "record_id": int,
            **scope,
            "emitter_name": str,
            "pipeline": str,
            "date": str,
            "status": str,
            "attempt_count": int,
            "last_error": str,
            "updated_at": str,
        },
        pk="record_id",
        nullable=("last_error",),
    )
    db.create_index(
        "emission_records", ["ecosystem", "tenant_id", "emitter_name", "pipeline", "date"], unique=True
    )


def _graph_tables(db: Schema) -> None:
    """What the asset graph hands from one asset (one process) to the next, and counters that outlive runs."""
    scope = {"ecosystem": str, "tenant_id": str}
    db.create_table(
        "usage_metrics",
        {**scope, "date": str, "resource_id": str, "metric_key": str, "subject": str, "value": Money},
        pk=("ecosystem", "tenant_id", "date", "resource_id", "metric_key", "subject"),
    )
    db.create_table(
        "usage_fetch_failures",
        {**scope, "date": str, "resource_id": str, "error": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id"),
    )
    db.create_table(
        "identity_resolutions",
        {
            **scope,
            "date": str,
            "line_id": str,
            "scope": str,
            "position": int,
            "identity_id": str,
            "identity_type": str,
            "display_name": str,
            "created_at": str,
            "deleted_at": str,
            "last_seen_at": str,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id", "scope", "position"),
        nullable=("display_name", "created_at", "deleted_at", "last_seen_at"),
    )
    db.create_table(
        "resolution_contexts",
        {**scope, "date": str, "line_id": str, "context_json": str},
        pk=("ecosystem", "tenant_id", "date", "line_id"),
    )
    db.create_table(
        "gather_counters",
        {**scope, "scan_key": str, "consecutive_empty": int, "consecutive_failures": int},
        pk=("ecosystem", "tenant_id", "scan_key"),
        defaults={"consecutive_empty": 0, "consecutive_failures": 0},
    )


def _reconciliation_verdict(db: Schema) -> None:
    """Which calculation of a day the reconciliation check last verified, and whether it passed: the emitters
    publish a day only when its current calculation reconciled (a per-partition block, DESIGN §1)."""
    db.add_column("pipeline_state", "reconciled_calculation_id", str)
    db.add_column("pipeline_state", "reconciliation_passed", int, not_null_default=0)


def _run_leases(db: Schema) -> None:
    """Which run computes which tenant, and which runs hold the `max_parallel_tenants` slots (DESIGN §3.7);
    see storage/leases.py."""
    db.create_table(
        "run_leases",
        {"lane": str, "run_id": str, "holder": str, "acquired_at": str, "heartbeat_at": str},
        pk="lane",
    )
    db.create_index("run_leases", ["run_id"])


def _published_outputs(db: Schema) -> None:
    """Where each emitter published a tenant's output (files, Pushgateway groups): what goes with the tenant's
    rows when a tenant that left the config is purged (chargeback_assets/tenants.py)."""
    db.create_table(
        "published_outputs",
        {
            "ecosystem": str,
            "tenant_id": str,
            "emitter_name": str,
            "location": str,
            "first_published_at": str,
        },
        pk=("ecosystem", "tenant_id", "emitter_name", "location"),
    )


def _billing_strays(db: Schema) -> None:
    """Lines the cost source sent for days outside the request: charged to no day, but kept (with the
    billing table's line columns) under the day they were reported with, so the `billing_well_formed`
    check can name them (stages/billing.py)."""
    db.create_table(
        "billing_strays",
        {
            "ecosystem": str,
            "tenant_id": str,
            "date": str,
            "line_id": str,
            "timestamp": str,
            "env_id": str,
            "resource_id": str,
            "product_type": str,
            "product_category": str,
            "quantity": Money,
            "unit_price": Money,
            "total_cost": Money,
            "currency": str,
            "granularity": str,
            "provider_prorated": int,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id"),
    )


def _inventory_gaps(db: Schema) -> None:
    """The endpoints that failed in the day's last inventory gather, and in the gather its current chargeback
    was calculated from (JSON lists, NULL when none): a day calculated from an incomplete inventory is not
    published (DESIGN §3.12). Days calculated before this migration count as calculated from a complete
    one."""
    db.add_column("pipeline_state", "inventory_errors", str)
    db.add_column("pipeline_state", "calculation_inventory_errors", str)


def _stage_fingerprints(db: Schema) -> None:
    """The billing fingerprint each later stage of a day was built from, so a stage older than the stored
    bill shows (the `stages_consistent` check) and is recalculated (the billing-change sensor).

    A day calculated after its bill was last gathered was built from that bill in one run; its stages are
    taken to reflect it. Any other day keeps no fingerprint and is judged stale until it is recalculated.
    """
    for column in ("usage_fingerprint", "resolution_fingerprint", "calculation_fingerprint"):
        db.add_column("pipeline_state", column, str)
    db.execute(
        "UPDATE pipeline_state SET usage_fingerprint = billing_fingerprint, "
        "resolution_fingerprint = billing_fingerprint, calculation_fingerprint = billing_fingerprint "
        "WHERE calculation_completed_at >= billing_fingerprint_at"
    )


def _gather_failures_per_source(db: Schema) -> None:
    """Billing and inventory gathers count their consecutive failures apart (stages/suspension.py): one
    shared counter would be reset by whichever source still answers. The old counter was the inventory's."""
    db.execute("UPDATE gather_counters SET scan_key = 'gather:inventory' WHERE scan_key = 'gather'")


def _topic_attribution(db: Schema) -> None:
    """The topic-attribution overlay: each cluster's topic metrics per day, each cluster line's attribution
    (or why it has none) and its topic rows, and the per-line retry counter beside `allocation_attempts`."""
    scope = {"ecosystem": str, "tenant_id": str}
    db.create_table(
        "topic_metrics",
        {**scope, "date": str, "resource_id": str, "metric_key": str, "topic": str, "value": Money},
        pk=("ecosystem", "tenant_id", "date", "resource_id", "metric_key", "topic"),
    )
    db.create_table(
        "topic_metrics_failures",
        {**scope, "date": str, "resource_id": str, "error": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id"),
    )
    db.create_table(
        "topic_attribution_lines",
        {
            **scope,
            "date": str,
            "line_id": str,
            "resource_id": str,
            "product_type": str,
            "total_cost": Money,
            "currency": str,
            "mapping": str,
            "status": str,
            "detail": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id"),
        nullable=("detail",),
    )
    db.create_table(
        "topic_attribution_facts",
        {
            **scope,
            "date": str,
            "line_id": str,
            "topic": str,
            "amount": Money,
            "method": str,
            "detail": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id", "topic"),
        nullable=("detail",),
    )
    db.add_column("billing", "topic_attribution_attempts", int, not_null_default=0)
    db.add_column("pipeline_state", "topic_attribution_calculated", int, not_null_default=0)


def _published_bill(db: Schema) -> None:
    """What each emission record's published output was built from: the billing fingerprint, whether the day
    was settled then, and whether a settled day was since restated (stages/emission.py). NULL before an
    output is published; kept while later attempts fail or skip."""
    db.add_column("emission_records", "billing_fingerprint", str)
    db.add_column("emission_records", "settled", int)
    db.add_column("emission_records", "restated", int, not_null_default=0)


def _resolution_snapshots(db: Schema) -> None:
    """Each distinct identity snapshot of a day's resolutions stored once, and each line's scopes as lists of
    snapshot numbers, instead of one 13-column row per (line, scope, identity): a cluster's lines all name
    the same key owners, and writing and reading those copies was most of resolution's cost. Stored days
    are moved over as they are, so a later calculation of them sees exactly what their resolution saw.
    """
    scope = {"ecosystem": str, "tenant_id": str}
    db.create_table(
        "resolution_identities",
        {
            **scope,
            "date": str,
            "snapshot": int,
            "identity_id": str,
            "identity_type": str,
            "display_name": str,
            "created_at": str,
            "deleted_at": str,
            "last_seen_at": str,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "date", "snapshot"),
        nullable=("display_name", "created_at", "deleted_at", "last_seen_at"),
    )
    for column in _RESOLVED_SCOPES:
        db.add_column("resolution_contexts", column, str, not_null_default="")
    day: tuple[str, str, str] | None = None
    numbers: dict[tuple[str | None, ...], int] = {}
    refs: dict[str, dict[str, list[int]]] = {}
    for ecosystem, tenant_id, date, line_id, resolved_scope, *snapshot in db.execute(
        "SELECT ecosystem, tenant_id, date, line_id, scope, identity_id, identity_type, display_name, "
        "created_at, deleted_at, last_seen_at, metadata_json FROM identity_resolutions "
        "ORDER BY ecosystem, tenant_id, date, line_id, scope, position"
    ):
        if (ecosystem, tenant_id, date) != day:
            _store_snapshots(db, day, numbers, refs)
            day, numbers, refs = (ecosystem, tenant_id, date), {}, {}
        number = numbers.setdefault(tuple(snapshot), len(numbers))
        refs.setdefault(line_id, {}).setdefault(resolved_scope, []).append(number)
    _store_snapshots(db, day, numbers, refs)
    db.execute("DROP TABLE identity_resolutions")


_RESOLVED_SCOPES = ("resource_active", "metrics_derived")


def _store_snapshots(
    db: Schema,
    day: tuple[str, str, str] | None,
    numbers: dict[tuple[str | None, ...], int],
    refs: dict[str, dict[str, list[int]]],
) -> None:
    """One stored day's snapshots and its lines' references, for `_resolution_snapshots`."""
    if day is None:
        return
    db.conn.executemany(
        "INSERT INTO resolution_identities (ecosystem, tenant_id, date, snapshot, identity_id, "
        "identity_type, display_name, created_at, deleted_at, last_seen_at, metadata_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*day, number, *snapshot) for snapshot, number in numbers.items()],
    )
    db.conn.executemany(
        "UPDATE resolution_contexts SET resource_active = ?, metrics_derived = ? "
        "WHERE ecosystem = ? AND tenant_id = ? AND date = ? AND line_id = ?",
        [
            (*(",".join(map(str, scopes.get(s, []))) for s in _RESOLVED_SCOPES), *day, line_id)
            for line_id, scopes in refs.items()
        ],
    )


def _usage_queries(db: Schema) -> None:
    """A digest of the range queries each day's stored usage answers, so a run for a revised bill can keep
    that usage when the new bill needs the same queries (stages/usage.py). NULL until a day is fetched again:
    a day stored before is fetched as before."""
    db.add_column("pipeline_state", "usage_queries", str)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "seed tables", _seed_tables),
    Migration(2, "asset graph tables", _graph_tables),
    Migration(3, "reconciliation verdict per day", _reconciliation_verdict),
    Migration(4, "run leases", _run_leases),
    Migration(5, "published outputs", _published_outputs),
    Migration(6, "billing strays", _billing_strays),
    Migration(7, "inventory gaps per day and per calculation", _inventory_gaps),
    Migration(8, "billing fingerprint per stage", _stage_fingerprints),
    Migration(9, "gather failures per source", _gather_failures_per_source),
    Migration(10, "topic attribution", _topic_attribution),
    Migration(11, "published bill per emission", _published_bill),
    Migration(12, "resolution identity snapshots once per day", _resolution_snapshots),
    Migration(13, "usage query digest per day", _usage_queries),
)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer version of the project; writing to it could corrupt it."""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


def schema_version(source: Source) -> int:
    if not source.dialect.schema(source.conn).has_table(VERSION_TABLE):
        return 0
    return source.conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}").fetchone()[0]


def apply_migrations(tx: Transaction, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations newer than the database's version; returns the versions applied.

    Takes the migration lock first (see the module docstring), so the version read is the latest committed.
    """
    tx.lock(VERSION_TABLE)
    schema = tx.dialect.schema(tx.conn)
    schema.create_table(
        VERSION_TABLE, {"version": int, "name": str, "applied_at": str}, pk="version", if_not_exists=True
    )
    current = schema_version(tx)
    known = latest_version(migrations)
    if current > known:
        raise SchemaTooNewError(
            f"the chargeback database {tx.location}: schema version {current} is newer than this code knows "
            f"({known}); upgrade the project before opening it"
        )
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        migration.apply(schema)
        schema.execute(
            f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, datetime.now(UTC).isoformat(timespec="seconds")),
        )
        applied.append(migration.version)
    return applied
