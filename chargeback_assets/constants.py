"""Names shared across the Dagster layer: asset groups and run tags."""

GATHER = "gather"
RESOLVE = "resolve"
ALLOCATE = "allocate"
EMIT = "emit"

TENANT_TAG = "chargeback/tenant"
"""Set on every run we launch; the run queue allows one run per value (see .dagster_home/dagster.yaml)."""
TRIGGER_TAG = "chargeback/trigger"
FAILED_TENANTS = "failed_tenants"
"""Metadata key on a step failure: tenant -> error, for the tenants whose work failed in that step."""
CONTINUES_TAG = "chargeback/continues"
"""On a run the continuation sensor launched: the failed run whose healthy tenants it finishes."""
