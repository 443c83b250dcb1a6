"""The daily schedule: the newest settled day, for every tenant, one run per tenant."""

from datetime import timedelta

import dagster as dg

from chargeback_assets.config import AppConfig
from chargeback_assets.constants import TENANT_TAG, TRIGGER_TAG
from chargeback_assets.partitions import partition_key


def build_daily_schedule(config: AppConfig, selection: dg.AssetSelection) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_chargeback_schedule",
        cron_schedule=config.orchestration.schedule_cron,
        execution_timezone="UTC",
        target=selection,
        description="Materializes each tenant's newest settled day (yesterday minus settle_days).",
    )
    def daily_chargeback_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        today = context.scheduled_execution_time.date()
        requests = []
        for name, tenant in sorted(config.tenants.items()):
            day = today - timedelta(days=1 + tenant.settle_days)
            if day < tenant.start_date:
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{name}|{day.isoformat()}",
                    partition_key=partition_key(day, name),
                    tags={TENANT_TAG: name, TRIGGER_TAG: "schedule"},
                )
            )
        return requests

    return daily_chargeback_schedule
