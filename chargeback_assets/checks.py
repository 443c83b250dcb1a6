"""Asset checks, evaluated and recorded per (date, tenant) partition.

An `AssetCheckResult` carries no partition: in a run over many partitions Dagster records it once, with
partition None, and shows every partition's check as "Skipped". Each check here therefore yields one
`AssetCheckEvaluation` per partition of the run, so the partitions view shows Passed or Failed for each
(date, tenant) with that partition's own figures.

`chargeback_reconciles` and `inventory_complete` are declared blocking, so the emitters always run after
them. The block itself is per partition: the verdicts are stored per day and the emitters publish only the
days that pass both (see assets/emit.py). Their evaluations are therefore yielded as non-blocking events,
which keeps Dagster from failing the check step, and with it every partition's emission, because one
partition failed.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import product
from operator import attrgetter
from typing import Any

import dagster as dg

# Not exported by Dagster 1.13 (pinned), but what makes an evaluation count for the partition's latest
# materialization: without it the UI treats every partition's check as stale.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from chargeback_assets.assets.runs import money, scrubbed_metadata
from chargeback_assets.config import TenantConfig
from chargeback_assets.partitions import days_by_tenant, partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.checks import (
    DayShare,
    billing_problems,
    check_reconciliation,
    inventory_gaps,
    metrics_failures,
    reconcile_topics_day,
    stale_stages,
    topic_metrics_failures,
    unallocated_day,
    unattributed_day,
)
from chargeback_assets.stages.scope import TenantData

MAX_LISTED = 20

Verdict = tuple[bool, Mapping[str, Any]]
"""A check's outcome for one tenant-day: passed, and the metadata that partition shows."""


@dataclass(frozen=True, slots=True)
class Check:
    """One asset check: its name, what the UI says of it, and how it judges a tenant-day."""

    name: str
    description: str
    evaluate: Callable[[TenantData, date], Verdict]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN
    blocking: bool = False


def _checks_of(
    partitions: dg.MultiPartitionsDefinition, asset: str, checks: Sequence[Check]
) -> dg.AssetChecksDefinition:
    """An asset's checks as one step (`<asset>_checks`), each still its own check in the UI.

    One step per asset rather than per check: a Dagster step costs more than most checks do (a revised
    day's run had 9 check steps beside 10 asset steps), and the checks of a tenant-day share one read of
    the partitions' latest materializations and one connection. Any check can still run alone: the step
    evaluates only the checks the run selected (`can_subset`)."""
    specs = {
        check.name: dg.AssetCheckSpec(
            check.name,
            asset=asset,
            description=check.description,
            blocking=check.blocking,
            partitions_def=partitions,
        )
        for check in checks
    }

    @dg.multi_asset_check(specs=list(specs.values()), can_subset=True, name=f"{asset}_checks")
    def evaluate_checks(
        context: dg.AssetCheckExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        selected = [check for check in checks if specs[check.name].key in context.selected_asset_check_keys]
        asset_key = dg.AssetKey(asset)
        targets = _latest_materializations(context.instance, asset_key, context.partition_keys)
        by_tenant = days_by_tenant(partitions, context.partition_keys)
        chargeback.hold_tenants(by_tenant, context.log.info)
        for tenant_name, days in by_tenant.items():
            start = chargeback.tenant(tenant_name).start_date
            with chargeback.data(tenant_name) as data:
                for day, check in product(days, selected):
                    if day < start:
                        passed, metadata = True, {"note": f"nothing to check: before start_date {start}"}
                    else:
                        passed, metadata = check.evaluate(data, day)
                    key = str(partition_key(day, tenant_name))
                    yield dg.AssetCheckEvaluation(
                        asset_key=asset_key,
                        check_name=check.name,
                        passed=passed,
                        metadata=scrubbed_metadata(metadata),
                        severity=check.severity,
                        partition=key,
                        target_materialization_data=targets.get(key),
                    )
        # Each check's own output: what the steps downstream of a blocking check wait for.
        for check in selected:
            yield dg.Output(None, output_name=specs[check.name].get_python_identifier())

    return evaluate_checks


def _latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: Sequence[str]
) -> dict[str, TargetMaterialization]:
    """Each partition's latest materialization, which its evaluation judges (two queries for the run)."""
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, {str(key) for key in keys}
    )
    if not latest:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(latest.values())), limit=len(latest)
    ).records
    return {
        record.partition_key: TargetMaterialization(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        for record in records
        if record.partition_key is not None
    }


def _reconciles(data: TenantData, day: date) -> Verdict:
    result = check_reconciliation(data, day)
    problems = list(result.mismatches)
    if result.missing_rows:
        problems.insert(
            0, f"{day}: {result.lines} billing line(s) but no chargeback rows (never calculated, or removed)"
        )
    return result.passed, {
        **money("billed", result.billed, result.currency),
        **money("allocated", result.allocated, result.currency),
        "chargeback_rows": result.rows,
        "mismatched_lines": len(result.mismatches),
        "mismatches": "\n".join(problems[:MAX_LISTED]) or "none",
    }


def _share_within(
    part: str, share_of: Callable[[TenantData, date], DayShare], limit_of: Callable[[TenantConfig], Decimal]
) -> Callable[[TenantData, date], Verdict]:
    """A check that a part of the day's bill (`unallocated`, `unattributed`) stays within the tenant's
    limit for it."""

    def evaluate(data: TenantData, day: date) -> Verdict:
        share = share_of(data, day).fraction
        limit = limit_of(data.tenant)
        return share <= limit, {f"{part}_fraction": float(share), "limit": float(limit)}

    return evaluate


def _topics_reconcile(data: TenantData, day: date) -> Verdict:
    result = reconcile_topics_day(data, day)
    return result.passed, {
        "cluster_lines": result.lines,
        **money("cluster_cost", result.cluster_cost, result.currency),
        **money("attributed_lines_cost", result.attributed, result.currency),
        "mismatched_lines": len(result.mismatches),
        "mismatches": "\n".join(result.mismatches[:MAX_LISTED]) or "none",
    }


def _problems(find: Callable[[TenantData, date], list[str]]) -> Callable[[TenantData, date], Verdict]:
    def evaluate(data: TenantData, day: date) -> Verdict:
        problems = find(data, day)
        return not problems, {
            "count": len(problems),
            "problems": "\n".join(problems[:MAX_LISTED]) or "none",
        }

    return evaluate


def build_checks(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """Every check, one step per asset checked (`_checks_of`)."""
    return [_checks_of(partitions, asset, checks) for asset, checks in CHECKS.items()]


CHECKS: Mapping[str, Sequence[Check]] = {
    "chargeback_facts": (
        Check(
            "chargeback_reconciles",
            "Every billing line's chargeback rows sum exactly to its total cost. Blocking, per partition: "
            "a day that fails is not emitted; the others are.",
            _reconciles,
            severity=dg.AssetCheckSeverity.ERROR,
            blocking=True,
        ),
        Check(
            "unallocated_share",
            "UNALLOCATED gets at most the tenant's unallocated_warn_fraction of the day's bill.",
            _share_within("unallocated", unallocated_day, attrgetter("unallocated_warn_fraction")),
        ),
        Check(
            "unattributed_share",
            "At most the tenant's unattributed_warn_fraction of the day's bill is charged to no payer (to "
            "resources, stand-ins for unknown ids, UNALLOCATED), rather than to a service account, user, "
            "identity pool, principal or team of the inventory.",
            _share_within("unattributed", unattributed_day, attrgetter("unattributed_warn_fraction")),
        ),
        Check(
            "inventory_complete",
            "The day was calculated from a complete inventory gather. Blocking, per partition: a day "
            "calculated while an inventory endpoint failed (its charges may sit on the wrong payers) is not "
            "emitted until a calculation after a complete gather.",
            _problems(inventory_gaps),
            severity=dg.AssetCheckSeverity.ERROR,
            blocking=True,
        ),
        Check(
            "stages_consistent",
            "Usage metrics, identity resolutions and chargeback were all built from the bill billing_lines "
            "holds. A run that stopped between two stages leaves a day whose later stages are older than its "
            "bill; the billing-change sensor recalculates such days within recalculation_days.",
            _problems(stale_stages),
            severity=dg.AssetCheckSeverity.ERROR,
        ),
    ),
    "usage_metrics": (
        Check(
            "metrics_fetched",
            "Usage metrics were reachable; otherwise the lines fell back to non-usage tiers.",
            _problems(metrics_failures),
        ),
    ),
    "billing_lines": (
        Check(
            "billing_well_formed",
            "Every billing row could be read and was dated in the days asked for. A malformed row (an "
            "amount that is not a number or beyond max_line_amount, a shape we cannot read) is kept but "
            "charges nothing, and its day is not emitted until the row parses; a stray row (dated outside "
            "the request) is charged to no day. Both are named here.",
            _problems(billing_problems),
            severity=dg.AssetCheckSeverity.ERROR,
        ),
    ),
    "topic_attribution": (
        Check(
            "topic_attribution_reconciles",
            "Each Kafka cluster line's topic rows sum exactly to the line, or to zero when it is recorded as "
            "disabled or skipped. Blocking, per partition: the topic CSV publishes only the days that pass.",
            _topics_reconcile,
            severity=dg.AssetCheckSeverity.ERROR,
            blocking=True,
        ),
    ),
    "topic_metrics": (
        Check(
            "topic_metrics_fetched",
            "Topic metrics were reachable; otherwise the cluster's lines followed missing_metrics_behavior.",
            _problems(topic_metrics_failures),
        ),
    ),
}
"""The checks of each asset checked, in the order its step evaluates them."""
