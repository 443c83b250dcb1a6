from datetime import UTC, date, datetime, timedelta

import dagster as dg

from chargeback_assets_tests.graph import running_graph


def test_daily_schedule_requests_each_tenants_newest_settled_day(tmp_path) -> None:
    settings = {"acme-prod": {"settle_days": 0}, "acme-staging": {"settle_days": 3}}
    with running_graph(tmp_path, tenant_settings=settings) as graph:
        schedule = graph.defs.resolve_schedule_def("daily_chargeback_schedule")
        tick = datetime.combine(graph.newest, datetime.min.time(), UTC).replace(hour=3)
        with dg.instance_for_test() as instance:
            context = dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                repository_def=graph.defs.get_repository_def(),
            )
            requests = schedule.evaluate_tick(context).run_requests
    today: date = tick.date()
    assert sorted((r.tags["chargeback/tenant"], r.partition_key) for r in requests) == [
        ("acme-prod", f"{today - timedelta(days=1)}|acme-prod"),
        ("acme-staging", f"{today - timedelta(days=4)}|acme-staging"),
    ]
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "UTC"
