"""Stand-in identities for ids the inventory does not know, so a charge always lands on a named target.

A billing line must be charged to someone even when its credentials point at an identity that was never
gathered (deleted before the first gather, masked, or simply missing). Charging a sentinel keeps the cost
visible under the id the provider reported, instead of smearing it over the tenant or losing it. Sentinels
carry `metadata.sentinel = True` so that reports can tell them from gathered identities.
"""

from __future__ import annotations

from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import BillingLine, Identity

CONNECTOR_CREDENTIALS = "connector_credentials"
KSQLDB_CREDENTIALS = "ksqldb_credentials"
FLINK_STATEMENT_OWNER = "flink_statement_owner"

CONNECTOR_API_KEY_MASKED = "connector_api_key_masked"
CONNECTOR_CREDENTIALS_UNKNOWN = "connector_credentials_unknown"
CONNECTOR_API_KEY_NOT_FOUND = "connector_api_key_not_found"
CONNECTOR_CREDENTIALS_MASKED = "connector_credentials_masked"
KSQLDB_OWNER_UNKNOWN = "ksqldb_owner_unknown"
KSQLDB_DELETED_WHEN_CALC_STARTED = "ksqldb_deleted_when_calc_started"
FLINK_STMT_OWNER_UNKNOWN = "flink_stmt_owner_unknown"

_TYPE_BY_PREFIX = (("sa-", "service_account"), ("u-", "user"), ("pool-", "identity_pool"))


def type_from_prefix(identity_id: str) -> str:
    """Confluent ids announce their kind by prefix; anything else is `unknown`."""
    for prefix, identity_type in _TYPE_BY_PREFIX:
        if identity_id.startswith(prefix):
            return identity_type
    return "unknown"


def sentinel(line: BillingLine, identity_id: str, identity_type: str | None = None) -> Identity:
    """An identity for `identity_id` that the inventory lacks; typed by prefix unless a type is given."""
    kind = identity_type or type_from_prefix(identity_id)
    return Identity(
        ecosystem=line.ecosystem,
        tenant_id=line.tenant_id,
        identity_id=identity_id,
        identity_type=kind,
        display_name=f"Unknown {kind}",
        metadata={"sentinel": True},
    )


def known_or_sentinel(line: BillingLine, inventory: InventoryView, identity_id: str) -> Identity:
    """The gathered identity of an id whatever its lifetime (an owner is the same identity on every day)."""
    return inventory.any_identity(identity_id) or sentinel(line, identity_id)
