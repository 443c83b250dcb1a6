"""List the data of tenants removed from the config, and purge one on request (a dry run unless --apply).

    python -m chargeback_assets.tenants --config chargeback.yaml removed
    python -m chargeback_assets.tenants --config chargeback.yaml purge --tenant-id acme-old [--apply]

Removing a tenant from the config removes its partitions from Dagster and nothing else: its rows stay in
every table and its outputs (CSV files, the OpenMetrics file and its fragments, the Pushgateway group) stay
where they were published, since data nobody asked to delete is never deleted silently. `removed` lists, for
every (ecosystem, tenant_id) with stored rows that no configured tenant has, its rows per table and the
outputs its emitters published. `purge` shows what deleting one of them would remove; with `--apply` it
removes the outputs (files; a Pushgateway group by an unauthenticated DELETE) and then every row of the
tenant in one transaction. An output that cannot be removed keeps its record, so the tenant stays listed
with what is left and a later purge finishes the job. A tenant still in the config is never purged.
Exit codes: 0 done; 1 not done (unreadable config, missing database, an output that could not be removed);
2 invalid command line (tenant still configured or with nothing stored, ambiguous ecosystem).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from chargeback_assets.cli import FAILED, OK, USAGE, fail, load_config_or_report
from chargeback_assets.config import AppConfig
from chargeback_assets.emitters.prometheus import fragments_of
from chargeback_assets.storage.database import ChargebackDatabase, open_database
from chargeback_assets.storage.dialect import DatabaseUnavailableError
from chargeback_assets.storage.emissions import PublishedOutput, published_outputs
from chargeback_assets.storage.tenants import TenantKey, purge_tenant, stored_tenants

PUSHGATEWAY_TIMEOUT_SECONDS = 10.0
COMMAND = "python -m chargeback_assets.tenants"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the chargeback YAML config file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("removed", help="list the stored data of tenants no longer in the config")
    purge = commands.add_parser("purge", help="delete a removed tenant's rows and outputs")
    purge.add_argument("--tenant-id", required=True, help="the removed tenant's tenant_id")
    purge.add_argument("--ecosystem", help="needed only when the tenant_id has data under several ecosystems")
    purge.add_argument("--apply", action="store_true", help="delete (without it: only show what would go)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return FAILED
    if not _stored(config):
        return fail(FAILED, f"no database at {config.storage.path}: nothing is stored")
    try:
        db = open_database(config.storage)
    except DatabaseUnavailableError as error:
        return fail(FAILED, str(error))
    with db:
        removed = removed_tenants(db, config)
        if args.command == "removed":
            return _list(db, removed)
        return _purge(db, config, removed, args.tenant_id, args.ecosystem, apply=args.apply)


def removed_tenants(db: ChargebackDatabase, config: AppConfig) -> dict[TenantKey, dict[str, int]]:
    """The stored tenants no configured tenant is, with their row counts per table."""
    configured = {(tenant.ecosystem, tenant.tenant_id) for tenant in config.tenants.values()}
    return {key: rows for key, rows in stored_tenants(db).items() if key not in configured}


def removed_hint(config: AppConfig, config_path: Path, tenant_id: str) -> str:
    """For another command that does not know `tenant_id`: a note when it is a removed tenant's, whose data
    is still stored (empty otherwise)."""
    if not _stored(config):
        return ""
    with open_database(config.storage) as db:
        if not any(stored == tenant_id for _, stored in removed_tenants(db, config)):
            return ""
    return (
        f"; {tenant_id!r} was removed from the config but its data is still stored: "
        f"see `{COMMAND} --config {config_path} removed`"
    )


def _stored(config: AppConfig) -> bool:
    """Whether the configured database may hold rows: a SQLite file not yet written holds none."""
    return config.storage.path is None or config.storage.path.is_file()


def _list(db: ChargebackDatabase, removed: dict[TenantKey, dict[str, int]]) -> int:
    if not removed:
        print(f"no tenant removed from the config has data in {db.location}")
    for (ecosystem, tenant_id), rows in removed.items():
        print(f"{ecosystem} {tenant_id}: {_rows_text(rows)}")
        for output in published_outputs(db, ecosystem, tenant_id):
            print(f"  {output.emitter_name}: {_describe(output.location)}")
    return OK


def _purge(
    db: ChargebackDatabase,
    config: AppConfig,
    removed: dict[TenantKey, dict[str, int]],
    tenant_id: str,
    ecosystem: str | None,
    *,
    apply: bool,
) -> int:
    configured = [
        name
        for name, tenant in config.tenants.items()
        if tenant.tenant_id == tenant_id and ecosystem in (None, tenant.ecosystem)
    ]
    if configured:
        return fail(
            USAGE,
            f"tenant_id {tenant_id!r} is still configured (tenant {configured[0]!r}); "
            "remove it from the config first",
        )
    matches = [key for key in removed if key[1] == tenant_id and ecosystem in (None, key[0])]
    if not matches:
        known = ", ".join(f"{e} {t}" for e, t in removed) or "none"
        return fail(USAGE, f"no removed tenant {tenant_id!r} has data; removed tenants: {known}")
    if len(matches) > 1:
        return fail(
            USAGE,
            f"tenant_id {tenant_id!r} has data under ecosystems "
            f"{', '.join(e for e, _ in matches)}; choose one with --ecosystem",
        )
    [(ecosystem, tenant_id)] = matches
    outputs = published_outputs(db, ecosystem, tenant_id)
    if not apply:
        print(f"would delete {ecosystem} {tenant_id}: {_rows_text(removed[ecosystem, tenant_id])}")
        for output in outputs:
            print(f"would remove {output.emitter_name}: {_describe(output.location)}")
        print("dry run: nothing was deleted; add --apply to delete")
        return OK
    failed = {}
    for output in outputs:
        problem = _remove(output)
        if problem:
            failed[output.location] = problem
        else:
            print(f"removed {output.emitter_name}: {output.location}")
    with db.transaction() as tx:
        deleted = purge_tenant(tx, ecosystem, tenant_id, keep_outputs=failed)
    print(f"deleted {ecosystem} {tenant_id}: {_rows_text({t: n for t, n in deleted.items() if n})}")
    for location, problem in failed.items():
        fail(FAILED, f"could not remove {location}: {problem}; it stays listed under `removed`")
    return FAILED if failed else OK


def _remove(output: PublishedOutput) -> str | None:
    """Remove one published output; what went wrong, or None. What is already gone counts as removed."""
    location = output.location
    if "://" in location:
        try:
            response = requests.delete(location, timeout=PUSHGATEWAY_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return f"the Pushgateway did not answer ({type(exc).__name__})"
        return None if response.ok else f"the Pushgateway answered HTTP {response.status_code}"
    path = Path(location)
    fragments = _fragments(path)
    try:
        path.unlink(missing_ok=True)
        if fragments is not None:
            shutil.rmtree(fragments)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _fragments(path: Path) -> Path | None:
    """The fragments directory beside an OpenMetrics file, when there is one: it goes with the file."""
    fragments = fragments_of(path)
    return fragments if path.suffix == ".om" and fragments.is_dir() else None


def _describe(location: str) -> str:
    if "://" in location:
        return f"{location} (Pushgateway group)"
    path = Path(location)
    fragments = _fragments(path)
    return (
        location
        + ("" if path.exists() else " (already gone)")
        + (f", with its fragments {fragments}" if fragments else "")
    )


def _rows_text(rows: dict[str, int]) -> str:
    listed = ", ".join(f"{table} {count}" for table, count in sorted(rows.items()))
    return f"{sum(rows.values())} rows" + (f" ({listed})" if listed else "")


if __name__ == "__main__":
    sys.exit(main())
