"""Names shared across the Dagster layer: asset groups and run tags."""

GATHER = "gather"
RESOLVE = "resolve"
ALLOCATE = "allocate"
EMIT = "emit"
TOPICS = "topics"

TENANT_TAG = "chargeback/tenant"
"""Set on every run we launch; the run queue allows one run per value (see .dagster_home/dagster.yaml)."""
TRIGGER_TAG = "chargeback/trigger"
FAILED_TENANTS = "failed_tenants"
"""Metadata key on a step failure: tenant -> error, for the tenants whose work failed in that step."""
CONTINUES_TAG = "chargeback/continues"
"""On a run the continuation sensor launched: the failed run whose healthy tenants it finishes."""
USAGE_TAG = "chargeback/usage"
"""`stored` on a run the billing-change sensor requests for a revised bill: usage_metrics keeps a day's
stored usage when its last fetch was complete and asked exactly the queries the revised bill needs, since
usage comes from the metrics, not from the bill's amounts (stages/usage.py). Any other run fetches."""
KEEP_STORED_USAGE = "stored"
