"""The DataFrame API against a real run of the demo's tenants: every frame holds what storage holds, with
exact Decimal amounts that add up to the bill, from a notebook's config file and from a Dagster asset."""

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from chargeback_assets import frames
from chargeback_assets.demo import TOPIC_TENANT
from chargeback_assets.engine.models import UNALLOCATED
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day
from chargeback_assets.storage.topics import topic_lines_for_day
from chargeback_assets_tests.demo_history import TEAMS, DemoHistory, demo_history

ECOSYSTEM = "confluent_cloud"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoHistory]:
    with demo_history(tmp_path_factory.mktemp("frames")) as running:
        yield running


@pytest.fixture
def data(history: DemoHistory) -> Iterator[TenantData]:
    with frames.tenant_data(history.graph.config_path, TOPIC_TENANT) as tenant:
        yield tenant


def billed(data: TenantData, day: date) -> Decimal:
    return sum(
        (line.total_cost for line in billing_for_day(data.db, ECOSYSTEM, data.tenant_id, day)), Decimal(0)
    )


def test_chargeback_rows_are_the_stored_rows_with_labels_and_exact_amounts(
    history: DemoHistory, data: TenantData
) -> None:
    rows = frames.chargeback_rows(data, history.days[0], history.days[-1])
    assert tuple(rows.columns) == frames.CHARGEBACK_COLUMNS
    assert rows["amount"].dtype == object
    assert all(isinstance(amount, Decimal) for amount in rows["amount"])
    for day in history.days:
        stored = chargeback_rows_for_day(data.db, ECOSYSTEM, data.tenant_id, day)
        of_day = rows[rows["date"] == day]
        assert len(of_day) == len(stored) > 0
        assert sorted(of_day["amount"]) == sorted(r.amount for r in stored)
        assert of_day["amount"].sum() == billed(data, day)  # exact: not a float sum
    assert set(rows["team"]) == {*TEAMS, "UNTAGGED"}
    tagged = rows[rows["team"] != "UNTAGGED"]
    assert all(tags["team"] == team for tags, team in zip(tagged["tags"], tagged["team"], strict=True))
    named = rows[rows["identity_type"] == "service_account"]
    assert len(named) > 0 and (named["identity_name"] != "").all()


def test_identity_team_and_tenant_totals_add_up_to_the_bill(history: DemoHistory, data: TenantData) -> None:
    first, last = history.days[0], history.days[-1]
    total = sum((billed(data, day) for day in history.days), Decimal(0))
    expected: dict[str, Decimal] = {}
    for day in history.days:
        for row in chargeback_rows_for_day(data.db, ECOSYSTEM, data.tenant_id, day):
            expected[row.identity_id] = expected.get(row.identity_id, Decimal(0)) + row.amount

    identities = frames.identity_totals(data, first, last)
    assert tuple(identities.columns) == frames.IDENTITY_COLUMNS
    assert dict(zip(identities["identity_id"], identities["amount"], strict=True)) == expected
    assert list(identities["amount"]) == sorted(expected.values(), reverse=True)
    top = frames.identity_totals(data, first, last, top=3)
    assert top.equals(identities.head(3))

    teams = frames.team_totals(data, first, last)
    assert list(teams["team"]) == sorted([*TEAMS, "UNTAGGED"])
    assert teams["amount"].sum() == total
    assert all(isinstance(amount, Decimal) for amount in teams["amount"])

    tenant = frames.tenant_totals(data, first, last)
    assert list(tenant["date"]) == history.days
    assert list(tenant["billed"]) == [billed(data, day) for day in history.days]
    assert (tenant["allocated"] == tenant["billed"]).all()
    assert tenant["unallocated"].sum() == expected.get(UNALLOCATED, Decimal(0))
    assert tenant["unallocated"].sum() <= tenant["unattributed"].sum() < total


def test_billing_lines_and_topic_rows_are_the_stored_ones(history: DemoHistory, data: TenantData) -> None:
    lines = frames.billing_lines(data, history.days[0], history.days[-1])
    assert tuple(lines.columns) == frames.BILLING_COLUMNS
    assert lines["total_cost"].sum() == sum((billed(data, day) for day in history.days), Decimal(0))
    assert set(lines["currency"]) == {"USD"}

    topics = frames.topic_rows(data, history.days[0], history.days[-1])
    assert tuple(topics.columns) == frames.TOPIC_COLUMNS
    assert len(topics) > 0 and all(isinstance(amount, Decimal) for amount in topics["amount"])
    for day in history.days:
        by_cluster = topics[topics["date"] == day].groupby(["resource_id", "product_type"])["amount"].sum()
        for line in topic_lines_for_day(data.db, ECOSYSTEM, data.tenant_id, day):
            if line.status == "attributed":
                assert by_cluster[(line.resource_id, line.product_type)] == line.total_cost, line


def test_frames_of_days_without_data_are_empty_but_typed(data: TenantData) -> None:
    long_ago = date(2001, 1, 1)
    rows = frames.chargeback_rows(data, long_ago, long_ago + timedelta(days=1))
    assert rows.empty and tuple(rows.columns) == frames.CHARGEBACK_COLUMNS
    assert rows["amount"].dtype == object
    assert frames.team_totals(data, long_ago, long_ago).empty


def test_a_bad_range_or_tenant_is_refused_with_what_and_where(history: DemoHistory, data: TenantData) -> None:
    with pytest.raises(ValueError, match=r"2026-03-15\.\.2026-03-14 ends before it starts"):
        frames.chargeback_rows(data, date(2026, 3, 15), date(2026, 3, 14))
    with pytest.raises(KeyError, match=re.escape(f"tenant 'nobody' is not in {history.graph.config_path}")):
        with frames.tenant_data(history.graph.config_path, "nobody"):
            pass


def test_a_downstream_dagster_asset_reads_the_frames_through_the_resource(history: DemoHistory) -> None:
    """The README's example: a daily-partitioned asset of the user's own, given the project's resource."""
    day = history.days[-1]

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date=history.days[0].isoformat()))
    def acme_team_costs(context: dg.AssetExecutionContext, chargeback: ChargebackResource) -> pd.DataFrame:
        day = context.partition_time_window.start.date()
        with chargeback.data(TOPIC_TENANT) as data:
            return frames.team_totals(data, day, day)

    resource = ChargebackResource(config_path=str(history.graph.config_path))
    result = dg.materialize(
        [acme_team_costs], resources={"chargeback": resource}, partition_key=day.isoformat()
    )
    assert result.success
    produced = result.output_for_node("acme_team_costs")
    with frames.tenant_data(history.graph.config_path, TOPIC_TENANT) as data:
        assert produced.equals(frames.team_totals(data, day, day))
        assert produced["amount"].sum() == billed(data, day)
