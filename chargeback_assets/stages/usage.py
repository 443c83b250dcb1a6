"""Usage metrics: the day's usage per (resource, metric, subject), from half-open range queries.

Every (resource, query) pair the days' billing lines need is fetched once for each contiguous run of days,
then cut into days. Unreachable metrics are never "no usage". A source that gave up on a passing fault (the
run's retry budget or the attempt cap ran out, `SourceError.transient`) has its failure recorded, and the
lines of that resource fall through to their non-usage tiers with detail `metrics_fetch_failed` (and a
warning check fails): one flaky hour of Prometheus does not block the day's bill. A permanent failure (401,
connection refused, a query Prometheus rejects) fails the partition instead, since falling back would only
hide a misconfiguration that every later run would meet too.

A run for a revised bill (`keep_stored`, which the billing-change sensor asks for) fetches only the days
whose stored usage does not answer the new bill: usage comes from the metrics, not from the bill's amounts,
so a day whose last fetch was complete and asked exactly the queries the new bill needs (`query_digest`:
the same resources, queries and step) keeps its rows. Asking Prometheus again would cost the revision more
than the rest of it, and could only lose samples the metrics server has dropped since.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

from chargeback_assets.ecosystems.base import SourceError
from chargeback_assets.engine.models import MetricQuery, UsageRecord, Window, day_start
from chargeback_assets.stages.bulk import collector_paused
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.pipeline import get_state, recorded_fingerprints, update_state
from chargeback_assets.storage.usage import replace_usage_day, usage_counts_for_day

METRICS_WORKERS = 4


@dataclass(slots=True)
class UsageDay:
    day: date
    records: int = 0
    resources: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    kept: bool = False
    """The stored usage answered the day's bill, so nothing was fetched (`keep_stored`)."""


def contiguous_runs(days: Sequence[date]) -> list[list[date]]:
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][-1] + timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def needed_queries(
    scope: TenantScope, days: Sequence[date]
) -> dict[tuple[str, str], tuple[MetricQuery, set[date]]]:
    """(resource, query key) -> the query and the days whose billing lines need it."""
    needs: dict[tuple[str, str], tuple[MetricQuery, set[date]]] = {}
    for day in days:
        for line in billing_for_day(scope.db, scope.ecosystem, scope.tenant_id, day):
            handler = scope.runtime.handler_for(line.product_type)
            if handler is None:
                continue
            for query in handler.metric_queries(line.product_type):
                needs.setdefault((line.resource_id, query.key), (query, set()))[1].add(day)
    return needs


def query_digest(queries: Iterable[tuple[str, MetricQuery]], step_seconds: int) -> str:
    """What a day's usage is fetched with, as a hash: each (resource, query) pair and the step, in any order.
    Two bills of a day whose lines need the same queries give the same digest, whatever their amounts."""
    entries = sorted(
        [resource_id, q.key, q.query_expression, list(q.label_keys), q.resource_label, q.subject_label]
        for resource_id, q in queries
    )
    return hashlib.sha256(json.dumps([step_seconds, entries], separators=(",", ":")).encode()).hexdigest()


@collector_paused()
def fetch_usage(scope: TenantScope, days: Sequence[date], keep_stored: bool = False) -> list[UsageDay]:
    """Fetch and store each day's usage; with `keep_stored`, a day whose stored usage answers its bill keeps
    it (see the module docstring)."""
    ordered = sorted(set(days))
    outcome = {day: UsageDay(day) for day in ordered}
    records: dict[date, list[UsageRecord]] = defaultdict(list)
    metrics = scope.runtime.metrics
    # Read before the lines, so a bill replaced in between shows as this stage being older than the bill.
    built_from = recorded_fingerprints(scope.db, scope.ecosystem, scope.tenant_id, ordered)
    needs = needed_queries(scope, ordered) if metrics is not None else {}
    step = scope.runtime.metrics_step_seconds
    queries_by_day: dict[date, list[tuple[str, MetricQuery]]] = defaultdict(list)
    for (resource_id, _key), (query, needed_days) in needs.items():
        for day in needed_days:
            queries_by_day[day].append((resource_id, query))
    digests = {day: query_digest(queries_by_day[day], step) for day in ordered}
    for day in ordered:
        if keep_stored:
            state = get_state(scope.db, scope.ecosystem, scope.tenant_id, day)
            outcome[day].kept = state.usage_queries == digests[day] and not state.metrics_fetch_failed

    def fetch(resource_id: str, query: MetricQuery, run: list[date]) -> dict[date, list[UsageRecord]]:
        """One range query summed into its days in the worker, so its samples die there: a 30-day backfill
        would otherwise hold millions of them waiting for the main thread."""
        window = Window(day_start(run[0]), day_start(run[-1] + timedelta(days=1)))
        usage = metrics.usage_by_day(query, window, step, resource_id)  # type: ignore[union-attr]
        return {day: usage.get(day, []) for day in run}

    jobs = [
        (resource_id, query, run)
        for (resource_id, _key), (query, needed_days) in sorted(needs.items())
        for run in contiguous_runs([day for day in needed_days if not outcome[day].kept])
    ]
    pool = ThreadPoolExecutor(max_workers=METRICS_WORKERS)
    try:
        futures = [(job, pool.submit(fetch, *job)) for job in jobs]
        for (resource_id, _query, run), future in futures:
            try:
                usage_by_day = future.result()
            except SourceError as exc:
                if not exc.transient:
                    raise scope.fail("metrics source", run, exc) from exc
                for day in run:
                    outcome[day].failures[resource_id] = str(exc)
                continue
            for day in run:
                records[day].extend(usage_by_day[day])
    except Exception:
        pool.shutdown(cancel_futures=True)  # the partition fails anyway: queued queries need not start
        raise
    except BaseException:
        # Interrupted (a Terminate): workers backing off would hold the run open for up to the whole retry
        # budget. Cancelling it wakes them at once and stops every other request of the run; nothing is
        # written, since only this thread writes and only after every query is in.
        scope.runtime.budget.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    for day in ordered:
        done = outcome[day]
        with scope.db.transaction() as tx:
            if done.kept:
                update_state(tx, scope.ecosystem, scope.tenant_id, day, usage_fingerprint=built_from.get(day))
            else:
                fetched = records.pop(day, [])
                replace_usage_day(tx, scope.ecosystem, scope.tenant_id, day, fetched, done.failures)
                update_state(
                    tx,
                    scope.ecosystem,
                    scope.tenant_id,
                    day,
                    metrics_fetch_failed=bool(done.failures),
                    usage_fingerprint=built_from.get(day),
                    usage_queries=digests[day],
                )
            done.records, done.resources = usage_counts_for_day(tx, scope.ecosystem, scope.tenant_id, day)
    return list(outcome.values())
