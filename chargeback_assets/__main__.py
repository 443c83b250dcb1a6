"""`python -m chargeback_assets validate [CONFIG]` (also `chargeback-assets validate`): check a config file.

It loads the file and builds, for every tenant, its ecosystem (clients, handlers, overrides) and its emitters,
without calling any source, then prints one line per tenant and exits 0; or prints every problem, one per
line, and exits 2. `--check-connectivity` also calls each source once per tenant (billing, inventory,
Prometheus) and says whether it answered; any that did not makes the exit code 1. `schema` prints the JSON
Schema of the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

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
from chargeback_assets.validation import ConfigError

INVALID = 2
UNREACHABLE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chargeback-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check a config file without running anything")
    check.add_argument("config", nargs="?", help=f"default: ${CONFIG_ENV_VAR}, else {DEFAULT_CONFIG_FILE}")
    check.add_argument("--check-connectivity", action="store_true", help="also call each source once")
    commands.add_parser("schema", help="print the JSON Schema of the config file")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
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


if __name__ == "__main__":
    sys.exit(main())
