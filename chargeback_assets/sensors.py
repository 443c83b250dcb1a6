"""Sensors: recalculate the recent days that need it, finish the healthy tenants of a run another tenant
failed, retry the emissions still owed, and keep an audit row per run.

The billing-change sensor decides what each recent day needs (stages/recalculation.py): a bill at the source
that is not the stored one, a later stage older than the stored bill, or a last run that failed. Its cursor
remembers the state each request answered (the source's bill and the last audited run of the day), so a
pending request is not repeated on every tick, while a new bill, a revert to an older one, or a run that
failed since is requested again. Run keys are not used: Dagster deduplicates them forever, which would
swallow exactly those repeats.

No sensor launches a suspended tenant (stages/suspension.py): it says so instead, naming the tenant and how
to resume (`SuspendedTenants`). The audit sensors record every run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from logging import Logger
from typing import TYPE_CHECKING

import dagster as dg

from chargeback_assets.assets.emit import EMIT_ASSETS
from chargeback_assets.assets.topics import TOPIC_OUTPUTS
from chargeback_assets.config import AppConfig, TenantConfig
from chargeback_assets.constants import (
    CONTINUES_TAG,
    FAILED_TENANTS,
    KEEP_STORED_USAGE,
    TENANT_TAG,
    TRIGGER_TAG,
    USAGE_TAG,
)
from chargeback_assets.partitions import TENANT, days_by_tenant, partition_key
from chargeback_assets.redaction import scrub
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.emission import pending_emissions
from chargeback_assets.stages.recalculation import recalculation_needs
from chargeback_assets.stages.scope import StageError, describe_days
from chargeback_assets.stages.suspension import suspension
from chargeback_assets.stages.topic_outputs import pending_topic_outputs
from chargeback_assets.storage.pipeline import FAILED, PipelineRun, record_run

if TYPE_CHECKING:  # what define_asset_job returns; Dagster does not export the class
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def newest_day(now: datetime) -> date:
    """The newest complete UTC day: today's partition does not exist until the day is over."""
    return now.astimezone(UTC).date() - timedelta(days=1)


def watched_days(tenant: TenantConfig, newest: date) -> list[date]:
    days = [newest - timedelta(days=offset) for offset in range(tenant.recalculation_days)]
    return sorted(day for day in days if day >= tenant.start_date)


class SuspendedTenants:
    """What a schedule or sensor tick does about suspended tenants: skip them, log each once, and give the
    skip reason the tick needs when it requests nothing else (Dagster takes none from a tick that does)."""

    def __init__(self, chargeback: ChargebackResource, log: Logger) -> None:
        self._chargeback, self._log = chargeback, log
        self._messages: dict[str, str | None] = {}

    def holds(self, tenant: str) -> bool:
        """Whether `tenant` is suspended, and so must not be launched by this tick."""
        if tenant not in self._messages:
            with self._chargeback.data(tenant) as data:
                held = suspension(data)
            self._messages[tenant] = None if held is None else str(held)
            if held is not None:
                self._log.warning(str(held))
        return self._messages[tenant] is not None

    def skip_reason(self, requests: Sequence[dg.RunRequest]) -> dg.SkipReason | None:
        messages = [message for message in self._messages.values() if message is not None]
        return dg.SkipReason("\n".join(messages)) if messages and not requests else None


def build_billing_change_sensor(
    config: AppConfig, selection: dg.AssetSelection, bill_stages: Sequence[dg.AssetKey]
) -> dg.SensorDefinition:
    """`bill_stages`: billing_lines and every asset built from it, what a day that needs only its bill
    recalculated is requested with (`DayNeed.bill_only`); their checks come with them."""

    @dg.sensor(
        name="billing_change_sensor",
        asset_selection=selection,
        minimum_interval_seconds=config.orchestration.billing_sensor_interval_seconds,
        description="Requests the recent (date, tenant) partitions, within each tenant's recalculation_days, "
        "whose bill changed at the source or was never materialized, whose later stages are older than "
        "their bill, or whose last run failed; once per state. Skips suspended tenants.",
    )
    def billing_change_sensor(
        context: dg.SensorEvaluationContext, chargeback: ChargebackResource
    ) -> dg.SensorResult:
        requested: dict[str, list[str | None]] = json.loads(context.cursor) if context.cursor else {}
        newest = newest_day(datetime.now(UTC))
        run_requests = []
        suspended = SuspendedTenants(chargeback, context.log)
        watched_keys = set()
        for name, tenant in sorted(chargeback.config.tenants.items()):
            days = watched_days(tenant, newest)
            watched_keys.update(f"{name}|{day.isoformat()}" for day in days)
            if not days or suspended.holds(name):
                continue
            try:
                with chargeback.scope(name) as scope:
                    needs = recalculation_needs(scope, days)
            except StageError as exc:
                context.log.warning(f"{name}: not checked this tick: {exc}")
                continue
            for need in needs:
                key = f"{name}|{need.day.isoformat()}"
                if not need.reasons:
                    requested.pop(key, None)
                    continue
                state = list(need.state)
                if requested.get(key) == state:
                    continue
                requested[key] = state
                what = "from billing_lines on" if need.bill_only else "of every stage"
                context.log.info(
                    f"{name} {need.day}: {'; '.join(need.reasons)}; requesting a recalculation {what}"
                )
                run_requests.append(
                    dg.RunRequest(
                        partition_key=partition_key(need.day, name),
                        tags={
                            TENANT_TAG: name,
                            TRIGGER_TAG: need.trigger,
                            **({USAGE_TAG: KEEP_STORED_USAGE} if need.bill_only else {}),
                        },
                        asset_selection=list(bill_stages) if need.bill_only else None,
                    )
                )
        cursor = {key: state for key, state in requested.items() if key in watched_keys}
        return dg.SensorResult(
            run_requests=run_requests,
            cursor=json.dumps(cursor, sort_keys=True),
            skip_reason=suspended.skip_reason(run_requests),
        )

    return billing_change_sensor


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def run_partitions(run: dg.DagsterRun, partitions: dg.MultiPartitionsDefinition) -> dict[str, list[date]]:
    """tenant -> dates a run covered, from its single-partition or range tags."""
    tags = run.tags
    if RANGE_START in tags:
        keys = partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(tags[RANGE_START], tags[RANGE_END])
        )
    elif "dagster/partition" in tags:
        keys = [tags["dagster/partition"]]
    else:
        return {}
    return days_by_tenant(partitions, keys)


def failed_tenants(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """tenant -> "step: error" for each tenant a step failed on its own (assets/runs.py `TenantWork`).

    Empty when the run failed for any other reason: then no tenant's work is known to be sound.
    """
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    failed: dict[str, str] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        user_data = event.step_failure_data.user_failure_data if event else None
        errors = user_data.metadata.get(FAILED_TENANTS) if user_data else None
        if errors is not None:
            failed.update({tenant: f"{event.step_key}: {error}" for tenant, error in errors.value.items()})
    return failed


def _materializations(instance: dg.DagsterInstance, run_id: str) -> Iterator[dg.AssetMaterialization]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        if record.event_log_entry.asset_materialization is not None:
            yield record.event_log_entry.asset_materialization


def continuation_requests(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    partitions: dg.MultiPartitionsDefinition,
    pipeline: Sequence[dg.AssetKey],
    checks: Sequence[dg.AssetCheckKey],
) -> list[dg.RunRequest]:
    """A run per healthy tenant of a run that other tenants failed, over what that run left undone.

    Dagster skips a failed step's successors for every partition of the run, so a tenant whose own work
    succeeded would otherwise wait for the next schedule or a human. Each request covers that tenant's days
    of the failed run, the assets not materialized for all of them and the checks the run never evaluated,
    and goes through the run queue with its tenant tag like any other run. Its run key makes it one
    continuation per failed run and tenant, however often the run is looked at.
    """
    failed = failed_tenants(instance, run.run_id)
    if not failed:
        return []
    done = {(m.asset_key, str(m.partition)) for m in _materializations(instance, run.run_id)}
    selected = sorted(run.asset_selection or pipeline, key=lambda key: key.to_user_string())
    evaluated = {
        record.event_log_entry.dagster_event.asset_check_evaluation_data.asset_check_key
        for record in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    }
    unevaluated = [check for check in checks if check.asset_key in selected and check not in evaluated]
    requests = []
    for tenant, days in run_partitions(run, partitions).items():
        if tenant in failed:
            continue
        keys = [str(partition_key(day, tenant)) for day in days]
        remaining = [asset for asset in selected if any((asset, key) not in done for key in keys)]
        if not remaining:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{run.run_id}|{tenant}",
                asset_selection=remaining,
                asset_check_keys=unevaluated,
                tags={
                    TENANT_TAG: tenant,
                    TRIGGER_TAG: "continuation",
                    CONTINUES_TAG: run.run_id,
                    RANGE_START: keys[0],
                    RANGE_END: keys[-1],
                    **({USAGE_TAG: run.tags[USAGE_TAG]} if USAGE_TAG in run.tags else {}),
                },
            )
        )
    return requests


def _rows_written_by_tenant(
    instance: dg.DagsterInstance, run_id: str, partitions: dg.MultiPartitionsDefinition
) -> dict[str, int]:
    """Chargeback rows the run wrote per tenant, from each chargeback_facts partition's row count."""
    written: dict[str, int] = defaultdict(int)
    for materialization in _materializations(instance, run_id):
        if materialization.asset_key != dg.AssetKey("chargeback_facts"):
            continue
        rows = materialization.metadata.get("dagster/row_count")
        if materialization.partition is None or rows is None:
            continue
        tenant = partitions.get_partition_key_from_str(materialization.partition).keys_by_dimension[TENANT]
        written[tenant] += int(rows.value)
    return dict(written)


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    errors = []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event else None
        if data and data.error:
            errors.append(f"{event.step_key}: {_error_chain(data.error)}")
    return errors


def _error_chain(error: object) -> str:
    """The messages of an error and its causes: a retried step's own message only says retries ran out."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())  # type: ignore[attr-defined]
        error = error.cause  # type: ignore[attr-defined]
    return " <- ".join(messages)


INTERRUPTED = "interrupted"
"""Audit status of a tenant whose own work succeeded in a run other tenants failed (see continuation)."""


def record_audit(
    context: dg.RunStatusSensorContext,
    chargeback: ChargebackResource,
    partitions: dg.MultiPartitionsDefinition,
    status: str,
) -> None:
    run = context.dagster_run
    stats = context.instance.get_run_stats(run.run_id)
    started = datetime.fromtimestamp(stats.start_time or stats.launch_time or 0, UTC)
    ended = datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else datetime.now(UTC)
    rows = _rows_written_by_tenant(context.instance, run.run_id, partitions)
    error = scrub("; ".join(_step_errors(context.instance, run.run_id)))[:2000] or None  # scrubbed before cut
    failed = failed_tenants(context.instance, run.run_id) if status == FAILED else {}
    for tenant_name, days in run_partitions(run, partitions).items():
        if tenant_name not in chargeback.config.tenants:
            continue
        outcome, message = status, error if status == FAILED else None
        if failed:  # the step failed some tenants only: each row says what happened to its own tenant
            outcome, message = (
                (FAILED, scrub(failed[tenant_name])[:2000])
                if tenant_name in failed
                else (INTERRUPTED, f"stopped because {', '.join(sorted(failed))} failed in the same run")
            )
        with chargeback.data(tenant_name) as data, data.db.transaction() as tx:
            record_run(
                tx,
                PipelineRun(
                    run_id=run.run_id,
                    ecosystem=data.ecosystem,
                    tenant_id=data.tenant_id,
                    tenant_name=tenant_name,
                    dates=tuple(days),
                    status=outcome,
                    started_at=started,
                    ended_at=ended,
                    rows_written=rows.get(tenant_name, 0),
                    error_message=message,
                ),
            )


def build_audit_sensors(partitions: dg.MultiPartitionsDefinition) -> list[dg.SensorDefinition]:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="run_audit_success",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Writes a pipeline_runs row for every successful run.",
    )
    def run_audit_success(context: dg.RunStatusSensorContext, chargeback: ChargebackResource) -> None:
        record_audit(context, chargeback, partitions, "success")

    @dg.run_failure_sensor(
        name="run_audit_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Writes a pipeline_runs row, with the step errors, for every failed run.",
    )
    def run_audit_failure(context: dg.RunFailureSensorContext, chargeback: ChargebackResource) -> None:
        record_audit(context, chargeback, partitions, FAILED)

    return [run_audit_success, run_audit_failure]


def build_continuation_sensor(
    partitions: dg.MultiPartitionsDefinition,
    job: UnresolvedAssetJobDefinition,
    pipeline: Sequence[dg.AssetKey],
    checks: Sequence[dg.AssetCheckKey],
) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="tenant_continuation_sensor",
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        request_job=job,
        description="When some tenants fail a run that covers several, launches a run per other tenant for "
        "the assets the failed run left undone.",
    )
    def tenant_continuation_sensor(
        context: dg.RunFailureSensorContext, chargeback: ChargebackResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        run = context.dagster_run
        suspended = SuspendedTenants(chargeback, context.log)
        requests = []
        for request in continuation_requests(context.instance, run, partitions, pipeline, checks):
            tenant = request.tags[TENANT_TAG]
            if suspended.holds(tenant):
                continue
            context.log.info(
                f"run {run.run_id[:8]}: {tenant} succeeded where others failed; continuing "
                f"{len(request.asset_selection or ())} asset(s) in a run of its own"
            )
            requests.append(request)
        yield from requests
        skip = suspended.skip_reason(requests)
        if skip is not None:
            yield skip

    return tenant_continuation_sensor


def contiguous_runs(days: Sequence[date]) -> list[list[date]]:
    """Sorted days cut into runs of consecutive days (one ranged run each, re-emitting nothing in between)."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def emission_retry_requests(
    instance: dg.DagsterInstance, chargeback: ChargebackResource, now: datetime
) -> Iterator[tuple[dg.RunRequest, str]]:
    """A run of one emit asset per tenant and stretch of consecutive owed days, with a line for the log.

    A day whose calculating run has not ended is left to that run. The run key names each owed day's
    emitter and attempt count, so a request is made once per attempt: a retry that fails again records
    another attempt, and the next tick asks again.
    """
    for name in sorted(chargeback.config.tenants):
        if not chargeback.tenant(name).emitters:
            continue
        with chargeback.data(name) as data:
            owed = {asset: pending_emissions(data, kind, now) for kind, asset in EMIT_ASSETS.items()}
            owed[TOPIC_OUTPUTS] = pending_topic_outputs(data, now)
        for asset, pending in owed.items():
            ready = [p for p in pending if _run_ended(instance, p.calculation_run_id)]
            for days in contiguous_runs([p.day for p in ready]):
                keys = [str(partition_key(day, name)) for day in days]
                attempts = ",".join(
                    f"{p.day}:{p.emitter}:{p.attempts}" for p in ready if days[0] <= p.day <= days[-1]
                )
                reasons = sorted({p.reason for p in ready if days[0] <= p.day <= days[-1]})
                request = dg.RunRequest(
                    run_key=f"emission_retry|{keys[0]}..{keys[-1]}|{asset}|{attempts}",
                    asset_selection=[dg.AssetKey(asset)],
                    tags={
                        TENANT_TAG: name,
                        TRIGGER_TAG: "emission_retry",
                        RANGE_START: keys[0],
                        RANGE_END: keys[-1],
                    },
                )
                yield request, f"{name}: {asset} owes {describe_days(days)} ({', '.join(reasons)})"


def _run_ended(instance: dg.DagsterInstance, run_id: str | None) -> bool:
    """Whether the run is over (a run this instance does not know, e.g. from the CLI, counts as over)."""
    run = instance.get_run_by_id(run_id) if run_id else None
    return run is None or run.is_finished


def build_emission_retry_sensor(config: AppConfig, job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="emission_retry_sensor",
        job=job,
        minimum_interval_seconds=config.orchestration.emission_retry_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Materializes again the emitter partitions still owed within each emitter's "
        "lookback_days: a failed CSV or push, or a calculated day never emitted since, and topic outputs "
        "that failed. Attempts are counted in emission_records. Skips suspended tenants.",
    )
    def emission_retry_sensor(
        context: dg.SensorEvaluationContext, chargeback: ChargebackResource
    ) -> dg.SensorResult:
        suspended = SuspendedTenants(chargeback, context.log)
        requests = []
        for request, line in emission_retry_requests(context.instance, chargeback, datetime.now(UTC)):
            if suspended.holds(request.tags[TENANT_TAG]):
                continue
            context.log.info(f"{line}; requesting its emission again")
            requests.append(request)
        return dg.SensorResult(run_requests=requests, skip_reason=suspended.skip_reason(requests))

    return emission_retry_sensor
