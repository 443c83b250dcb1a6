"""Names shared across the Dagster layer: asset groups, run tags, retry policies."""

import dagster as dg

GATHER = "gather"
RESOLVE = "resolve"
ALLOCATE = "allocate"
EMIT = "emit"

TENANT_TAG = "chargeback/tenant"
"""Set on every run we launch; the run queue allows one run per value (see .dagster_home/dagster.yaml)."""
TRIGGER_TAG = "chargeback/trigger"

SOURCE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Billing, inventory and metrics sources: transient failures are retried before the partition fails."""
