"""`python -m chargeback_assets validate [CONFIG]` (also `chargeback-assets validate`): check a config file.

It loads the file and builds, for every tenant, its ecosystem (clients, handlers, overrides) and its emitters,
without calling any source, then prints one line per tenant and exits 0; or prints every problem, one per
line, and exits 2. `--check-connectivity` also calls each source once per tenant (billing, inventory,
Prometheus) and says whether it answered; any that did not makes the exit code 1. `schema` prints the JSON
Schema of the file. `storage copy --from SRC --to DST` copies a chargeback database (a SQLite file or a
postgresql:// URL) into another and verifies the copy (storage/transfer.py): it prints the row counts per
table and the billed and charged totals per (tenant, day) of both, and exits 1 when they differ (nothing is
kept then) or the destination already holds rows (unless `--replace`); 2 when both name one database.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from chargeback_assets.cli import FAILED, OK, fail
from chargeback_assets.config import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_FILE,
    TenantConfig,
    json_schema,
    load_config,
)
from chargeback_assets.ecosystems.base import EcosystemRuntime
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.engine.models import Window
from chargeback_assets.runtime import build_runtime
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.dialect import DatabaseUnavailableError
from chargeback_assets.storage.transfer import (
    Contents,
    CopyMismatchError,
    DestinationNotEmptyError,
    copy_database,
)
from chargeback_assets.validation import ConfigError, DatabaseUrl

INVALID = 2
UNREACHABLE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chargeback-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check a config file without running anything")
    check.add_argument("config", nargs="?", help=f"default: ${CONFIG_ENV_VAR}, else {DEFAULT_CONFIG_FILE}")
    check.add_argument("--check-connectivity", action="store_true", help="also call each source once")
    commands.add_parser("schema", help="print the JSON Schema of the config file")
    storage = commands.add_parser("storage", help="work on a chargeback database")
    storage_commands = storage.add_subparsers(dest="storage_command", required=True)
    copy = storage_commands.add_parser("copy", help="copy every row into another database, verified")
    for flag, role in (("--from", "source"), ("--to", "destination")):
        copy.add_argument(
            flag,
            dest=role,
            required=True,
            help=f"the {role}: a SQLite file, or postgresql://USER@HOST:PORT/DATABASE (password from "
            "PGPASSWORD or ~/.pgpass, so that it is not on the command line)",
        )
    copy.add_argument("--replace", action="store_true", help="replace the rows the destination holds")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
    if args.command == "storage":
        return copy_storage(args.source, args.destination, replace=args.replace)
    return validate(args.config, check_connectivity=args.check_connectivity)


def validate(path: str | None, *, check_connectivity: bool) -> int:
    try:
        config = load_config(path)
        runtimes = {name: _build(tenant) for name, tenant in config.tenants.items()}
    except ConfigError as error:
        print(error, file=sys.stderr)
        return INVALID
    today = datetime.now(UTC).date()
    failed = False
    try:
        for name, tenant in config.tenants.items():
            emitters = ", ".join(f"{e.name} ({e.type})" for e in tenant.emitters) or "none"
            days = max((today - tenant.start_date).days, 0)
            print(
                f"{name}: {tenant.ecosystem}, from {tenant.start_date}, emitters {emitters}, "
                f"{days} date partitions"
            )
            if check_connectivity:
                failed |= not _check_sources(name, runtimes[name], today)
    finally:
        for runtime in runtimes.values():
            runtime.close()
    return UNREACHABLE if failed else 0


def _build(tenant: TenantConfig) -> EcosystemRuntime:
    """The tenant's runtime and emitters, built as a run builds them; nothing is called yet."""
    for emitter in tenant.emitters:
        emitter.params.build()
    return build_runtime(tenant, RetryBudget(0))  # no retries: a check should answer at once


def _check_sources(name: str, runtime: EcosystemRuntime, today: date) -> bool:
    """Calls billing, inventory and Prometheus once each; prints what each answered."""
    yesterday = today - timedelta(days=1)
    probes: dict[str, Callable[[], object]] = {
        "billing": lambda: runtime.cost_source.gather(yesterday, today),
        "inventory": lambda: _inventory(runtime),
    }
    metrics, query = runtime.metrics, _first_query(runtime)
    if metrics is not None and query is not None:
        window = Window.for_day(yesterday)
        probes["prometheus"] = lambda: metrics.query_range(query, window, runtime.metrics_step_seconds, None)
    ok = True
    for source, probe in probes.items():
        try:
            probe()
        except Exception as error:  # a check reports every failure, whatever its kind
            ok = False
            print(f"{name}: {source}: FAILED: {error}")
        else:
            print(f"{name}: {source}: ok")
    return ok


def _inventory(runtime: EcosystemRuntime) -> None:
    gather = runtime.inventory.gather()
    if gather.errors:
        raise RuntimeError("; ".join(gather.errors))


def _first_query(runtime: EcosystemRuntime) -> object:
    """A query the tenant really issues, so the check asks what a run asks."""
    for handler in runtime.handlers:
        for product_type in sorted(handler.product_types):
            for query in handler.metric_queries(product_type):
                return query
    return None


def copy_storage(source: str, destination: str, *, replace: bool) -> int:
    """Copy `source` into `destination` and report both databases' contents (never a password)."""
    if not _is_url(source) and not Path(source).is_file():
        return fail(FAILED, f"no database at {source}: nothing to copy")
    if _same_database(source, destination):
        return fail(INVALID, "--from and --to name the same database")
    try:
        with _open(source) as origin, _open(destination) as target:
            try:
                copied = copy_database(origin, target, replace=replace)
            except CopyMismatchError as mismatch:
                _print_contents(origin.location, mismatch.source, target.location, mismatch.copied)
                return fail(FAILED, f"{mismatch} (destination {target.location})")
            _print_contents(origin.location, copied, target.location, copied)
            print(f"copied {origin.location} into {target.location}")
    except (DatabaseUnavailableError, DestinationNotEmptyError, ValueError, OSError) as error:
        return fail(FAILED, str(error))
    return OK


def _same_database(source: str, destination: str) -> bool:
    if _is_url(source) != _is_url(destination):
        return False
    if _is_url(source):
        return DatabaseUrl(source).location == DatabaseUrl(destination).location
    return Path(source).resolve() == Path(destination).resolve()


def _is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def _open(location: str) -> ChargebackDatabase:
    if _is_url(location):
        return ChargebackDatabase.connect(DatabaseUrl(location).reveal())  # its password is now masked
    return ChargebackDatabase.open(location)


def _print_contents(source: str, expected: Contents, destination: str, copied: Contents) -> None:
    """Rows per table, then billed and charged per (tenant, day), of both sides; `!=` marks a difference."""
    print(f"{'table':<32} {'source':>12} {'destination':>12}   ({source} -> {destination})")
    for table in sorted(expected.rows.keys() | copied.rows.keys()):
        rows = expected.rows.get(table), copied.rows.get(table)
        print(f"{table:<32} {rows[0]!s:>12} {rows[1]!s:>12}{'' if rows[0] == rows[1] else '   !='}")
    print(
        f"{'tenant':<40} {'day':<10} {'billed':>16} {'copy billed':>16} {'charged':>16} {'copy charged':>16}"
    )
    for key in sorted(set(expected.days) | set(copied.days)):
        figures = (
            expected.billed.get(key),
            copied.billed.get(key),
            expected.charged.get(key),
            copied.charged.get(key),
        )
        same = figures[0] == figures[1] and figures[2] == figures[3]
        print(
            f"{key[0] + '/' + key[1]:<40} {key[2]:<10} "
            + " ".join(f"{figure!s:>16}" for figure in figures)
            + ("" if same else "   !=")
        )


if __name__ == "__main__":
    sys.exit(main())
