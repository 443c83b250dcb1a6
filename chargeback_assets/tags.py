"""Set, list and remove custom tags on identities and resources from the command line.

    python -m chargeback_assets.tags --config chargeback.yaml set --tenant acme-prod \\
        --entity-type identity --entity-id sa-123 --key team --value payments

Tags are validated like config `tags:` and written to the tenant's `custom_tags` table (created_by "cli");
emitters carry them onto every chargeback row of that identity or resource from the next emission on.
Exit codes: 0 done; 1 the request could not be carried out (bad config file, tag to remove not found);
2 invalid command line (unknown tenant, bad tag key or value, missing argument).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chargeback_assets.cli import FAILED, OK, USAGE, fail, load_config_or_report
from chargeback_assets.config import tag_problem
from chargeback_assets.storage.database import open_database
from chargeback_assets.storage.dialect import DatabaseUnavailableError
from chargeback_assets.storage.tags import EntityTag, list_tags, remove_tag, set_tag
from chargeback_assets.tenants import removed_hint

CLI_AUTHOR = "cli"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chargeback_assets.tags", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, type=Path, help="the chargeback YAML config file")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, needs_entity, needs_key, needs_value in (
        ("set", True, True, True),
        ("list", False, False, False),
        ("remove", True, True, False),
    ):
        command = commands.add_parser(name)
        command.add_argument("--tenant", required=True, help="tenant name as in the config file")
        command.add_argument("--entity-type", choices=("identity", "resource"), required=needs_entity)
        command.add_argument("--entity-id", required=needs_entity)
        if needs_key:
            command.add_argument("--key", required=True)
        if needs_value:
            command.add_argument("--value", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return FAILED
    tenant = config.tenants.get(args.tenant)
    if tenant is None:
        known = ", ".join(sorted(config.tenants))
        hint = removed_hint(config, args.config, args.tenant)
        return fail(USAGE, f"unknown tenant {args.tenant!r}; known: {known}{hint}")
    problem = tag_problem(args.key, getattr(args, "value", None)) if "key" in args else None
    if problem:
        return fail(USAGE, f"tag {args.key!r}: {problem}")
    path = config.storage.path
    if path is not None and not path.parent.is_dir():
        return fail(FAILED, f"database directory {path.parent} does not exist")
    try:
        db = open_database(config.storage)
    except DatabaseUnavailableError as error:
        return fail(FAILED, str(error))
    with db:
        if args.command == "list":
            for tag in list_tags(db, tenant.ecosystem, tenant.tenant_id, args.entity_type, args.entity_id):
                print(
                    f"{tag.entity_type}\t{tag.entity_id}\t{tag.tag_key}={tag.tag_value}\t({tag.created_by})"
                )
            return OK
        with db.transaction() as tx:
            if args.command == "set":
                set_tag(
                    tx,
                    EntityTag(
                        tenant.ecosystem,
                        tenant.tenant_id,
                        args.entity_type,
                        args.entity_id,
                        args.key,
                        args.value,
                        CLI_AUTHOR,
                        datetime.now(UTC),
                    ),
                )
                print(f"{args.entity_type} {args.entity_id}: {args.key}={args.value}")
                return OK
            if remove_tag(tx, tenant.ecosystem, tenant.tenant_id, args.entity_type, args.entity_id, args.key):
                print(f"{args.entity_type} {args.entity_id}: removed {args.key}")
                return OK
    return fail(
        FAILED, f"{args.entity_type} {args.entity_id} has no tag {args.key!r} in tenant {args.tenant}"
    )


if __name__ == "__main__":
    sys.exit(main())
