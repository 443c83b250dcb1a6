"""Cost charged to no payer is shown on every chargeback_facts partition, in the tenant report, and warned
about above the tenant's `unattributed_warn_fraction`, even on days when UNALLOCATED gets nothing."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg

from chargeback_assets.resources import ChargebackResource
from chargeback_assets.sandbox.organization import Organization
from chargeback_assets.stages.report import tenant_report
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets_tests.graph import running_graph

TENANT = "acme-prod"
LIMIT = Decimal("0.05")


def payers(org: Organization) -> set[str]:
    """The organization's service accounts, users and identity pools, read from the sandbox itself."""
    pools = [pool["id"] for provider in org.identity_pools.values() for pool in provider]
    return {item["id"] for key in ("service_accounts", "users") for item in org.objects[key]} | set(pools)


def test_cost_charged_to_no_payer_is_shown_per_partition_and_warned_about(tmp_path: Path) -> None:
    settings = {TENANT: {"unattributed_warn_fraction": str(LIMIT)}}
    with (
        running_graph(tmp_path, days=4, tenant_settings=settings) as graph,
        dg.instance_for_test() as instance,
    ):
        days = [graph.newest - timedelta(days=offset) for offset in (2, 1, 0)]
        result = graph.run(TENANT, days[0], days[-1], instance=instance)
        assert result.success
        known = payers(graph.sandboxes[TENANT].org)
        expected, billed = {}, {}
        with ChargebackDatabase.open(graph.db_path) as db:
            for day in days:
                rows = chargeback_rows_for_day(db, "confluent_cloud", TENANT, day)
                expected[day] = sum((r.amount for r in rows if r.identity_id not in known), Decimal(0))
                lines = billing_for_day(db, "confluent_cloud", TENANT, day)
                billed[day] = sum((line.total_cost for line in lines), Decimal(0))
        with ChargebackResource(config_path=str(graph.config_path)).data(TENANT) as data:
            report = tenant_report(data, days, datetime.now(UTC).date())

    assert report.unattributed == sum(expected.values()) > report.unallocated
    shown = {m.partition: m.metadata for m in result.asset_materializations_for_node("chargeback_facts")}
    checks = {
        (e.partition, e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.check_name in ("unattributed_share", "unallocated_share")
    }
    for day in days:
        key = f"{day.isoformat()}|{TENANT}"
        assert expected[day] > 0, day
        assert shown[key]["unattributed_exact"].value == f"{expected[day]} USD"
        assert shown[key]["unattributed"].value == float(expected[day])
        share = expected[day] / billed[day]
        check = checks[(key, "unattributed_share")]
        assert check.passed == (share <= LIMIT), (day, share)
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["unattributed_fraction"].value == float(share)
        assert check.metadata["limit"].value == float(LIMIT)
    failed = [key for (key, name), e in checks.items() if name == "unattributed_share" and not e.passed]
    assert failed, "the sandbox charges more than 5 % of some day to no payer"
    assert all(checks[(key, "unallocated_share")].passed for key in failed)
