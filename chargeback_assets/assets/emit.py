"""Emit: the chargeback published as CSV files, Prometheus metrics and FOCUS files, one partition at a time.

Dagster's blocking checks block a whole run step, so one partition that does not reconcile would hold back
every other partition of a backfill. The block is per partition instead: the emission stage publishes a day
only when its current chargeback reconciled, and these assets materialize exactly the partitions that were
published (or had nothing to publish). A blocked or failed partition gets no materialization, an
`emission_records` row, and fails the step after the others were published.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg

from chargeback_assets.assets.runs import scrubbed_metadata
from chargeback_assets.constants import EMIT
from chargeback_assets.engine.models import is_settled
from chargeback_assets.partitions import days_by_tenant, partition_key
from chargeback_assets.redaction import scrub
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.emission import EmissionFailed, EmitterRun, emit_days, emitters_of_type
from chargeback_assets.stages.scope import describe_days


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
        output_required=False,
        description=description,
    )
    def emit(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.AssetMaterialization]:
        now = datetime.now(UTC)
        problems: list[str] = []
        by_tenant = days_by_tenant(partitions, context.partition_keys)
        chargeback.hold_tenants(by_tenant, context.log.info)
        for tenant_name, days in by_tenant.items():
            tenant = chargeback.tenant(tenant_name)
            wanted = [day for day in days if day >= tenant.start_date]
            notes = {day: f"nothing to do: before start_date {tenant.start_date}" for day in days}
            if not emitters_of_type(tenant, emitter_type):
                notes.update(dict.fromkeys(wanted, f"nothing to do: no {emitter_type} emitter configured"))
                wanted = []
            runs: list[EmitterRun] = []
            if wanted:
                context.log.info(f"{name}: {tenant_name}, {describe_days(wanted)}")
                with chargeback.data(tenant_name) as data:
                    try:
                        runs = emit_days(data, emitter_type, wanted, now=now)
                    except EmissionFailed as exc:
                        problems.append(str(exc))
                        runs = exc.runs
            for day in days:
                key = partition_key(day, tenant_name)
                settled = {"settled": is_settled(day, now.date(), tenant.settle_days)}
                if day not in wanted:
                    yield _materialization(name, key, {"status": notes[day], **settled})
                    continue
                blocked = sorted({run.blocked[day] for run in runs if day in run.blocked})
                if blocked:
                    problems.append(f"{tenant_name} {day}: {'; '.join(blocked)}")
                if blocked or any(day in run.failed for run in runs):
                    continue
                yield _materialization(name, key, {**_published(runs, day), **settled})
        if problems:
            raise dg.Failure(
                description=scrub("some partitions were not published:\n" + "\n".join(problems)),
            )

    return emit


def _materialization(name: str, key: dg.MultiPartitionKey, metadata: dict) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key=name, partition=str(key), metadata=scrubbed_metadata(metadata))


def _published(runs: list[EmitterRun], day: date) -> dict[str, object]:
    """What a published (or rightly skipped or withdrawn) partition shows: its rows, where they went, each
    emitter's outcome."""
    outputs = [path for run in runs for path in run.day_outputs.get(day, [])]
    statuses = [f"{run.emitter}: {_outcome(run, day)}" for run in runs]
    metadata: dict[str, object] = {
        "dagster/row_count": max((run.day_rows.get(day, 0) for run in runs), default=0),
        "status": "; ".join(statuses),
    }
    currencies = sorted({run.day_facts[day].currency for run in runs if day in run.day_facts})
    if currencies:
        metadata["currency"] = ",".join(currencies)
    metadata["restated"] = any(run.day_bills[day].restated for run in runs if day in run.day_bills)
    files = [path for path in outputs if "://" not in path]
    if files:
        metadata["path"] = dg.MetadataValue.path(files[0])
    if len(outputs) > 1:
        metadata["outputs"] = "\n".join(outputs)
    return metadata


def _outcome(run: EmitterRun, day: date) -> str:
    if day in run.emitted:
        return "emitted" + (f" ({run.replaced[day]})" if day in run.replaced else "")
    if day in run.emptied:
        return f"withdrawn ({run.emptied[day]})"
    return f"skipped ({run.skipped.get(day)})"


EMIT_ASSETS = {"csv": "chargeback_csv", "prometheus": "chargeback_prometheus", "focus": "chargeback_focus"}
"""Emitter type -> the asset that publishes it."""


def build_emit_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        _emit_asset(
            partitions,
            "csv",
            EMIT_ASSETS["csv"],
            "One CSV file per tenant and date (or month) with every chargeback row, names, types and tags; "
            "a team rollup when rows carry a `team` tag. Recorded in emission_records.",
        ),
        _emit_asset(
            partitions,
            "prometheus",
            EMIT_ASSETS["prometheus"],
            "An OpenMetrics file per tenant with every emitted date (for promtool TSDB backfill), and the "
            "newest day pushed to a Pushgateway when configured. Recorded in emission_records.",
        ),
        _emit_asset(
            partitions,
            "focus",
            EMIT_ASSETS["focus"],
            "A FOCUS 1.2 cost and usage file per tenant and date (or month), one row per chargeback row, for "
            "FinOps tools. Recorded in emission_records.",
        ),
    ]
