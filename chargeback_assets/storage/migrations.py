"""Numbered schema migrations, applied in order when the database is opened.

A migration is never edited once released: a schema change is a new, higher-numbered migration. The
caller runs `apply_migrations` inside a `BEGIN IMMEDIATE` transaction, so the version check and the
changes happen under the write lock: when two processes open a new file at once, the second waits and
then finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from chargeback_assets.engine.models import UTC

VERSION_TABLE = "schema_version"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


def _table(
    db: sqlite_utils.Database,
    name: str,
    columns: dict[str, type],
    pk: str | tuple[str, ...],
    nullable: Sequence[str] = (),
    defaults: dict[str, object] | None = None,
    foreign_keys: Sequence[tuple[str, str, str]] = (),
) -> sqlite_utils.db.Table:
    """A STRICT table whose columns are NOT NULL unless listed as nullable (STRICT refuses REAL in TEXT)."""
    table = db.table(name)
    table.create(
        columns,
        pk=pk,
        not_null=[c for c in columns if c not in nullable],
        defaults=defaults or {},
        foreign_keys=list(foreign_keys),
        strict=True,
    )
    return table


def _seed_tables(db: sqlite_utils.Database) -> None:
    """The original system's tables: bill, inventory, chargeback, pipeline bookkeeping, tags, emissions."""
    scope = {"ecosystem": str, "tenant_id": str}
    billing = _table(
        db,
        "billing",
        {
            **scope,
            "line_id": str,
            "timestamp": str,
            "env_id": str,
            "resource_id": str,
            "product_type": str,
            "product_category": str,
            "quantity": str,
            "unit_price": str,
            "total_cost": str,
            "currency": str,
            "granularity": str,
            "provider_prorated": int,
            "allocation_attempts": int,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "line_id"),
        defaults={"allocation_attempts": 0, "metadata_json": "{}"},
    )
    billing.create_index(["ecosystem", "tenant_id", "timestamp"])

    resources = _table(
        db,
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
    resources.create_index(["ecosystem", "tenant_id", "resource_type"])
    resources.create_index(["ecosystem", "tenant_id", "deleted_at"])

    identities = _table(
        db,
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
    identities.create_index(["ecosystem", "tenant_id", "identity_type"])
    identities.create_index(["ecosystem", "tenant_id", "deleted_at"])

    _table(
        db,
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
    # NULL never equals NULL in a UNIQUE constraint, so the nullable columns are indexed through IFNULL with
    # a blob sentinel: it keeps NULL and the empty string apart while making two NULLs collide.
    db.execute(
        "CREATE UNIQUE INDEX idx_chargeback_dimensions_unique ON chargeback_dimensions ("
        "ecosystem, tenant_id, env_id, IFNULL(resource_id, X'00'), product_category, product_type, "
        "identity_id, cost_type, IFNULL(allocation_method, X'00'), IFNULL(allocation_detail, X'00'))"
    )

    facts = _table(
        db,
        "chargeback_facts",
        {**scope, "timestamp": str, "dimension_id": int, "amount": str, "metadata_json": str},
        pk=("timestamp", "dimension_id"),
        foreign_keys=[("dimension_id", "chargeback_dimensions", "dimension_id")],
    )
    facts.create_index(["ecosystem", "tenant_id", "timestamp"])
    facts.create_index(["dimension_id"])

    _table(
        db,
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

    runs = _table(
        db,
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
    runs.create_index(["ecosystem", "tenant_id", "started_at"])

    tags = _table(
        db,
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
    tags.create_index(["ecosystem", "tenant_id", "entity_type", "entity_id", "tag_key"], unique=True)
    tags.create_index(["ecosystem", "tenant_id", "tag_key", "tag_value"])

    emissions = _table(
        db,
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
    emissions.create_index(["ecosystem", "tenant_id", "emitter_name", "pipeline", "date"], unique=True)


def _graph_tables(db: sqlite_utils.Database) -> None:
    """What the asset graph hands from one asset (one process) to the next, and counters that outlive runs."""
    scope = {"ecosystem": str, "tenant_id": str}
    _table(
        db,
        "usage_metrics",
        {**scope, "date": str, "resource_id": str, "metric_key": str, "subject": str, "value": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id", "metric_key", "subject"),
    )
    _table(
        db,
        "usage_fetch_failures",
        {**scope, "date": str, "resource_id": str, "error": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id"),
    )
    _table(
        db,
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
    _table(
        db,
        "resolution_contexts",
        {**scope, "date": str, "line_id": str, "context_json": str},
        pk=("ecosystem", "tenant_id", "date", "line_id"),
    )
    _table(
        db,
        "gather_counters",
        {**scope, "scan_key": str, "consecutive_empty": int, "consecutive_failures": int},
        pk=("ecosystem", "tenant_id", "scan_key"),
        defaults={"consecutive_empty": 0, "consecutive_failures": 0},
    )


def _reconciliation_verdict(db: sqlite_utils.Database) -> None:
    """Which calculation of a day the reconciliation check last verified, and whether it passed: the emitters
    publish a day only when its current calculation reconciled (a per-partition block, DESIGN §1)."""
    state = db.table("pipeline_state")
    state.add_column("reconciled_calculation_id", str)
    state.add_column("reconciliation_passed", int, not_null_default=0)


def _run_leases(db: sqlite_utils.Database) -> None:
    """Which run computes which tenant, and which runs hold the `max_parallel_tenants` slots (DESIGN §3.7);
    see storage/leases.py."""
    _table(
        db,
        "run_leases",
        {"lane": str, "run_id": str, "holder": str, "acquired_at": str, "heartbeat_at": str},
        pk="lane",
    )
    db.table("run_leases").create_index(["run_id"])


def _published_outputs(db: sqlite_utils.Database) -> None:
    """Where each emitter published a tenant's output (files, Pushgateway groups): what goes with the tenant's
    rows when a tenant that left the config is purged (chargeback_assets/tenants.py)."""
    _table(
        db,
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


def _billing_strays(db: sqlite_utils.Database) -> None:
    """Lines the cost source sent for days outside the request: charged to no day, but kept (with the
    billing table's line columns) under the day they were reported with, so the `billing_well_formed`
    check can name them (stages/billing.py)."""
    _table(
        db,
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
            "quantity": str,
            "unit_price": str,
            "total_cost": str,
            "currency": str,
            "granularity": str,
            "provider_prorated": int,
            "metadata_json": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id"),
    )


def _inventory_gaps(db: sqlite_utils.Database) -> None:
    """The endpoints that failed in the day's last inventory gather, and in the gather its current chargeback
    was calculated from (JSON lists, NULL when none): a day calculated from an incomplete inventory is not
    published (DESIGN §3.12). Days calculated before this migration count as calculated from a complete
    one."""
    state = db.table("pipeline_state")
    state.add_column("inventory_errors", str)
    state.add_column("calculation_inventory_errors", str)


def _stage_fingerprints(db: sqlite_utils.Database) -> None:
    """The billing fingerprint each later stage of a day was built from, so a stage older than the stored
    bill shows (the `stages_consistent` check) and is recalculated (the billing-change sensor).

    A day calculated after its bill was last gathered was built from that bill in one run; its stages are
    taken to reflect it. Any other day keeps no fingerprint and is judged stale until it is recalculated.
    """
    state = db.table("pipeline_state")
    for column in ("usage_fingerprint", "resolution_fingerprint", "calculation_fingerprint"):
        state.add_column(column, str)
    db.execute(
        "UPDATE pipeline_state SET usage_fingerprint = billing_fingerprint, "
        "resolution_fingerprint = billing_fingerprint, calculation_fingerprint = billing_fingerprint "
        "WHERE calculation_completed_at >= billing_fingerprint_at"
    )


def _gather_failures_per_source(db: sqlite_utils.Database) -> None:
    """Billing and inventory gathers count their consecutive failures apart (stages/suspension.py): one
    shared counter would be reset by whichever source still answers. The old counter was the inventory's."""
    db.execute("UPDATE gather_counters SET scan_key = 'gather:inventory' WHERE scan_key = 'gather'")


def _topic_attribution(db: sqlite_utils.Database) -> None:
    """The topic-attribution overlay: each cluster's topic metrics per day, each cluster line's attribution
    (or why it has none) and its topic rows, and the per-line retry counter beside `allocation_attempts`."""
    scope = {"ecosystem": str, "tenant_id": str}
    _table(
        db,
        "topic_metrics",
        {**scope, "date": str, "resource_id": str, "metric_key": str, "topic": str, "value": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id", "metric_key", "topic"),
    )
    _table(
        db,
        "topic_metrics_failures",
        {**scope, "date": str, "resource_id": str, "error": str},
        pk=("ecosystem", "tenant_id", "date", "resource_id"),
    )
    _table(
        db,
        "topic_attribution_lines",
        {
            **scope,
            "date": str,
            "line_id": str,
            "resource_id": str,
            "product_type": str,
            "total_cost": str,
            "currency": str,
            "mapping": str,
            "status": str,
            "detail": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id"),
        nullable=("detail",),
    )
    _table(
        db,
        "topic_attribution_facts",
        {
            **scope,
            "date": str,
            "line_id": str,
            "topic": str,
            "amount": str,
            "method": str,
            "detail": str,
        },
        pk=("ecosystem", "tenant_id", "date", "line_id", "topic"),
        nullable=("detail",),
    )
    db.table("billing").add_column("topic_attribution_attempts", int, not_null_default=0)
    db.table("pipeline_state").add_column("topic_attribution_calculated", int, not_null_default=0)


def _published_bill(db: sqlite_utils.Database) -> None:
    """What each emission record's published output was built from: the billing fingerprint, whether the day
    was settled then, and whether a settled day was since restated (stages/emission.py). NULL before an
    output is published; kept while later attempts fail or skip."""
    records = db.table("emission_records")
    records.add_column("billing_fingerprint", str)
    records.add_column("settled", int)
    records.add_column("restated", int, not_null_default=0)


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
)


class SchemaTooNewError(RuntimeError):
    """The file was migrated by a newer version of the project; writing to it could corrupt it."""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


def schema_version(db: sqlite_utils.Database) -> int:
    if not db.table(VERSION_TABLE).exists():
        return 0
    return db.execute(f"SELECT IFNULL(MAX(version), 0) FROM {VERSION_TABLE}").fetchone()[0]


def apply_migrations(db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations newer than the file's version; returns the versions applied.

    Must run inside a write transaction (see the module docstring).
    """
    if not db.conn.in_transaction:
        raise RuntimeError("apply_migrations must run inside a BEGIN IMMEDIATE transaction")
    db.table(VERSION_TABLE).create(
        {"version": int, "name": str, "applied_at": str},
        pk="version",
        not_null=["name", "applied_at"],
        if_not_exists=True,
        strict=True,
    )
    current = schema_version(db)
    known = latest_version(migrations)
    if current > known:
        raise SchemaTooNewError(
            f"database schema version {current} is newer than this code knows ({known}); upgrade the project"
        )
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        migration.apply(db)
        db.table(VERSION_TABLE).insert(
            {
                "version": migration.version,
                "name": migration.name,
                "applied_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        applied.append(migration.version)
    return applied
