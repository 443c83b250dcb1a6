from datetime import UTC, date, datetime

import dagster as dg

from chargeback_assets_tests.graph import running_graph


def test_daily_schedule_requests_each_tenants_newest_settled_day(tmp_path) -> None:
    settings = {"acme-prod": {"settle_days": 0}, "acme-staging": {"settle_days": 3}}
    with running_graph(tmp_path, tenant_settings=settings) as graph:
        schedule = graph.defs.resolve_schedule_def("daily_chargeback_schedule")
        tick = datetime.combine(graph.newest, datetime.min.time(), UTC).replace(hour=3)
        with dg.instance_for_test() as instance:
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
            requests = schedule.evaluate_tick(context).run_requests
    today: date = tick.date()
    assert sorted((r.partition_key, r.tags["chargeback/tenant"]) for r in requests) == [
        (f"{date.fromordinal(today.toordinal() - 1)}|acme-prod", "acme-prod"),
        (f"{date.fromordinal(today.toordinal() - 4)}|acme-staging", "acme-staging"),
    ]
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "UTC"
