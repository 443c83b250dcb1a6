"""Sensors: re-materialize recent days whose bill changed, and keep an audit row per run.

The billing-change sensor compares each recent day's fingerprint at the source with the fingerprint recorded
when the partition was built. Its cursor remembers what it already asked for, so a pending request is not
repeated on every tick, while a revert to an older bill (a fingerprint seen before) still differs from what
was recorded and is requested again. Run keys are not used: Dagster deduplicates them forever, which would
swallow exactly that revert.
"""

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from chargeback_assets.config import AppConfig, TenantConfig
from chargeback_assets.constants import TENANT_TAG, TRIGGER_TAG
from chargeback_assets.partitions import DATE, TENANT, partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.billing import current_fingerprints
from chargeback_assets.stages.inventory import gather_suspended
from chargeback_assets.stages.scope import StageError
from chargeback_assets.storage.pipeline import PipelineRun, record_run, recorded_fingerprints


def newest_day(now: datetime) -> date:
    """The newest complete UTC day: today's partition does not exist until the day is over."""
    return now.astimezone(UTC).date() - timedelta(days=1)


def watched_days(tenant: TenantConfig, newest: date) -> list[date]:
    days = [newest - timedelta(days=offset) for offset in range(tenant.recalculation_days)]
    return sorted(day for day in days if day >= tenant.start_date)


def build_billing_change_sensor(config: AppConfig, selection: dg.AssetSelection) -> dg.SensorDefinition:
    @dg.sensor(
        name="billing_change_sensor",
        asset_selection=selection,
        minimum_interval_seconds=config.orchestration.billing_sensor_interval_seconds,
        description="Requests the recent (date, tenant) partitions whose bill changed at the source, or that "
        "were never materialized, within each tenant's recalculation_days.",
    )
    def billing_change_sensor(
        context: dg.SensorEvaluationContext, chargeback: ChargebackResource
    ) -> dg.SensorResult:
        requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        newest = newest_day(datetime.now(UTC))
        run_requests = []
        watched_keys = set()
        for name, tenant in sorted(chargeback.config.tenants.items()):
            days = watched_days(tenant, newest)
            if not days:
                continue
            try:
                with chargeback.scope(name) as scope:
                    if gather_suspended(scope):
                        context.log.warning(f"{name}: suspended after repeated gather failures; not watched")
                        continue
                    current = current_fingerprints(scope, days)
                    recorded = recorded_fingerprints(scope.db, scope.ecosystem, scope.tenant_id, days)
            except StageError as exc:
                context.log.warning(f"{name}: billing not checked this tick: {exc}")
                continue
            for day in sorted(current):
                key = f"{name}|{day.isoformat()}"
                watched_keys.add(key)
                fingerprint = current[day]
                if recorded.get(day) == fingerprint:
                    requested.pop(key, None)
                    continue
                if requested.get(key) == fingerprint:
                    continue
                requested[key] = fingerprint
                reason = "never materialized" if day not in recorded else "billing changed"
                context.log.info(f"{name} {day}: {reason}; requesting a recalculation")
                run_requests.append(
                    dg.RunRequest(
                        partition_key=partition_key(day, name),
                        tags={TENANT_TAG: name, TRIGGER_TAG: "billing_changed"},
                    )
                )
        cursor = {key: fp for key, fp in requested.items() if key in watched_keys}
        return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(cursor, sort_keys=True))

    return billing_change_sensor


def run_partitions(run: dg.DagsterRun, partitions: dg.MultiPartitionsDefinition) -> dict[str, list[date]]:
    """tenant -> dates a run covered, from its single-partition or range tags."""
    tags = run.tags
    if "dagster/asset_partition_range_start" in tags:
        key_range = dg.PartitionKeyRange(
            tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
        )
        keys = partitions.get_partition_keys_in_range(key_range)
    elif "dagster/partition" in tags:
        keys = [tags["dagster/partition"]]
    else:
        return {}
    covered: dict[str, set[date]] = defaultdict(set)
    for key in keys:
        dims = partitions.get_partition_key_from_str(key).keys_by_dimension
        covered[dims[TENANT]].add(date.fromisoformat(dims[DATE]))
    return {tenant: sorted(days) for tenant, days in covered.items()}


def _rows_written_by_tenant(
    instance: dg.DagsterInstance, run_id: str, partitions: dg.MultiPartitionsDefinition
) -> dict[str, int]:
    """Chargeback rows the run wrote per tenant, from each chargeback_facts partition's row count."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    written: dict[str, int] = defaultdict(int)
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is None or materialization.asset_key != dg.AssetKey("chargeback_facts"):
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
    error = "; ".join(_step_errors(context.instance, run.run_id))[:2000] or None
    for tenant_name, days in run_partitions(run, partitions).items():
        if tenant_name not in chargeback.config.tenants:
            continue
        with chargeback.data(tenant_name) as data, data.db.transaction() as tx:
            record_run(
                tx,
                PipelineRun(
                    run_id=run.run_id,
                    ecosystem=data.ecosystem,
                    tenant_id=data.tenant_id,
                    tenant_name=tenant_name,
                    dates=tuple(days),
                    status=status,
                    started_at=started,
                    ended_at=ended,
                    rows_written=rows.get(tenant_name, 0),
                    error_message=error if status == "failed" else None,
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
        record_audit(context, chargeback, partitions, "failed")

    return [run_audit_success, run_audit_failure]
