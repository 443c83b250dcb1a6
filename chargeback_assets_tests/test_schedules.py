from datetime import UTC, date, datetime, timedelta

import dagster as dg

from chargeback_assets_tests.graph import Graph, running_graph


def tick(graph: Graph, instance: dg.DagsterInstance, at: datetime) -> tuple[list[dg.RunRequest], str | None]:
    """The schedule's tick at `at`: its run requests and its skip message."""
    schedule = graph.defs.resolve_schedule_def("daily_chargeback_schedule")
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        repository_def=graph.defs.get_repository_def(),
        resources={"chargeback": graph.resource},
    ) as context:
        result = schedule.evaluate_tick(context)
    return list(result.run_requests or ()), result.skip_message


def test_daily_schedule_requests_each_tenants_newest_settled_day(tmp_path) -> None:
    settings = {"acme-prod": {"settle_days": 0}, "acme-staging": {"settle_days": 3}}
    with running_graph(tmp_path, tenant_settings=settings) as graph, dg.instance_for_test() as instance:
        at = datetime.combine(graph.newest, datetime.min.time(), UTC).replace(hour=3)
        requests, _ = tick(graph, instance, at)
        schedule = graph.defs.resolve_schedule_def("daily_chargeback_schedule")
    today: date = at.date()
    assert sorted((r.tags["chargeback/tenant"], r.partition_key) for r in requests) == [
        ("acme-prod", f"{today - timedelta(days=1)}|acme-prod"),
        ("acme-staging", f"{today - timedelta(days=4)}|acme-staging"),
    ]
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "UTC"


def test_billing_failures_suspend_a_tenant_from_the_schedule_until_a_manual_run_gathers(tmp_path) -> None:
    settings = {
        "acme-prod": {"settle_days": 0, "gather_failure_threshold": 2, "http": {"max_retries": 0}},
        "acme-staging": {"settle_days": 0, "gather_failure_threshold": 1, "http": {"max_retries": 0}},
    }
    with running_graph(tmp_path, tenant_settings=settings) as graph, dg.instance_for_test() as instance:
        day = graph.newest
        at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).replace(hour=3)
        everyone = [f"{day}|acme-prod", f"{day}|acme-staging"]

        def scheduled() -> list[str]:
            return sorted(request.partition_key for request in tick(graph, instance, at)[0])

        for sandbox in graph.sandboxes.values():
            sandbox.faults.set("server_error", times=None, path_prefix="/billing/", status=500)
        for tenant in graph.sandboxes:
            assert not graph.run(tenant, day, instance=instance, raise_on_error=False).success
        assert scheduled() == [f"{day}|acme-prod"], "acme-staging's one failed billing gather reached 1"
        assert not graph.run("acme-prod", day, instance=instance, raise_on_error=False).success

        requests, skipped = tick(graph, instance, at)
        assert requests == []
        prod, staging = skipped.splitlines()
        assert prod == (
            "acme-prod is suspended: its last 2 billing gathers failed (gather_failure_threshold 2), so "
            "scheduled and sensor runs skip it. To resume, fix the billing source, then launch acme-prod "
            "by hand (Materialize in the Dagster UI, or dagster asset materialize): its first successful "
            "billing gather lifts the suspension."
        )
        assert staging.startswith("acme-staging is suspended: its last 1 billing gathers failed")

        graph.sandboxes["acme-prod"].faults.clear()
        assert graph.run("acme-prod", day, instance=instance).success, "a manual launch of it proceeds"
        assert scheduled() == [f"{day}|acme-prod"], "its successful gather lifted its suspension only"
        graph.sandboxes["acme-staging"].faults.clear()
        assert graph.run("acme-staging", day, instance=instance).success
        assert scheduled() == everyone
