"""The daily schedule: the newest settled day, for every tenant not suspended, one run per tenant."""

import dagster as dg

from chargeback_assets.config import AppConfig
from chargeback_assets.constants import TENANT_TAG, TRIGGER_TAG
from chargeback_assets.engine.models import newest_settled_day
from chargeback_assets.partitions import partition_key
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sensors import SuspendedTenants


def build_daily_schedule(config: AppConfig, selection: dg.AssetSelection) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_chargeback_schedule",
        cron_schedule=config.orchestration.schedule_cron,
        execution_timezone="UTC",
        target=selection,
        description="Materializes each tenant's newest settled day (yesterday minus settle_days); skips "
        "suspended tenants.",
    )
    def daily_chargeback_schedule(
        context: dg.ScheduleEvaluationContext, chargeback: ChargebackResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        today = context.scheduled_execution_time.date()
        suspended = SuspendedTenants(chargeback, context.log)
        requests = []
        for name, tenant in sorted(chargeback.config.tenants.items()):
            day = newest_settled_day(today, tenant.settle_days)
            if day < tenant.start_date or suspended.holds(name):
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{name}|{day.isoformat()}",
                    partition_key=partition_key(day, name),
                    tags={TENANT_TAG: name, TRIGGER_TAG: "schedule"},
                )
            )
        return suspended.skip_reason(requests) or requests

    return daily_chargeback_schedule
