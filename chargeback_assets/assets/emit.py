"""Emit: the chargeback published as CSV files and as Prometheus metrics, after reconciliation passed.

Both assets sit behind the blocking `chargeback_reconciles` check on `chargeback_facts`: when the check fails
in a run, Dagster does not start them, so a partition whose rows do not sum to its bill is never published.
"""

from datetime import UTC, datetime

import dagster as dg

from chargeback_assets.assets.runs import markdown_table
from chargeback_assets.constants import EMIT
from chargeback_assets.partitions import days_by_tenant
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.emission import EmissionFailed, EmitterRun, emit_days, emitters_of_type
from chargeback_assets.stages.scope import describe_days

MAX_LISTED = 20


def _emit_asset(
    partitions: dg.MultiPartitionsDefinition, emitter_type: str, name: str, description: str
) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        group_name=EMIT,
        partitions_def=partitions,
        deps=["chargeback_facts"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={emitter_type},
        description=description,
    )
    def emit(context: dg.AssetExecutionContext, chargeback: ChargebackResource) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        done: list[tuple[str, EmitterRun]] = []
        without: list[str] = []
        failures: list[str] = []
        for tenant_name, days in days_by_tenant(partitions, context.partition_keys).items():
            tenant = chargeback.tenant(tenant_name)
            wanted = [day for day in days if day >= tenant.start_date]
            if not emitters_of_type(tenant, emitter_type):
                without.append(tenant_name)
                continue
            context.log.info(f"{name}: {tenant_name}, {describe_days(wanted)}")
            with chargeback.data(tenant_name) as data:
                try:
                    runs = emit_days(data, emitter_type, wanted, now=now)
                except EmissionFailed as exc:
                    failures.append(str(exc))
                    runs = exc.runs
            done += [(tenant_name, run) for run in runs]
        if failures:
            raise dg.Failure(
                description="\n".join(failures),
                metadata={"outcomes": _outcomes(done)},
            )
        outputs = [path for _, run in done for path in run.outputs]
        metadata: dict[str, object] = {
            "dagster/row_count": sum(run.rows for _, run in done),
            "dates_emitted": sum(len(run.emitted) for _, run in done),
            "dates_skipped": sum(len(run.skipped) for _, run in done),
            "outcomes": _outcomes(done),
            "outputs": "\n".join(outputs[:MAX_LISTED]) or "none",
        }
        if without:
            metadata["tenants_without_emitter"] = (
                f"no {emitter_type} emitter configured, nothing to do: {', '.join(without)}"
            )
        return dg.MaterializeResult(metadata=metadata)

    return emit


def _outcomes(done: list[tuple[str, EmitterRun]]) -> dg.MetadataValue:
    rows: list[list[object]] = []
    for tenant, run in done:
        for record in run.records:
            note = run.skipped.get(record.date) or run.failed.get(record.date) or ""
            rows.append([tenant, run.emitter, record.date, record.status, record.attempt_count, note])
    return markdown_table(["tenant", "emitter", "date", "status", "attempts", "note"], rows[:MAX_LISTED])


def build_emit_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        _emit_asset(
            partitions,
            "csv",
            "chargeback_csv",
            "One CSV file per tenant and date (or month) with every chargeback row, names, types and tags; "
            "a team rollup when rows carry a `team` tag. Recorded in emission_records.",
        ),
        _emit_asset(
            partitions,
            "prometheus",
            "chargeback_prometheus",
            "An OpenMetrics file per tenant with every emitted date (for promtool TSDB backfill), and the "
            "newest day pushed to a Pushgateway when configured. Recorded in emission_records.",
        ),
    ]
