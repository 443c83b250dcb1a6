"""The emission stage over a real SQLite file: records, attempts, lookback, monthly grouping, tags, and the
OpenMetrics file backfilled into a real Prometheus and queried back against the database totals."""

from __future__ import annotations

import csv
import gc
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from chargeback_assets.config import parse_config
from chargeback_assets.engine.fingerprint import billing_fingerprint
from chargeback_assets.engine.models import (
    BillingLine,
    ChargebackRow,
    CostType,
    Identity,
    Resource,
    day_start,
)
from chargeback_assets.stages.checks import check_reconciliation
from chargeback_assets.stages.emission import PIPELINE, RESTATED, EmissionFailed, emit_days
from chargeback_assets.stages.scope import TenantData
from chargeback_assets.storage.billing import replace_billing_day
from chargeback_assets.storage.chargeback import chargeback_rows_for_day, replace_chargeback_day
from chargeback_assets.storage.database import ChargebackDatabase, Transaction
from chargeback_assets.storage.emissions import emission_records
from chargeback_assets.storage.inventory import upsert_identities, upsert_resources
from chargeback_assets.storage.pipeline import update_state
from chargeback_assets.storage.tags import EntityTag, list_tags, set_tag
from chargeback_assets_tests.databases import StorageTarget
from chargeback_assets_tests.real_prometheus import backfilled_prometheus

ECOSYSTEM, TENANT_ID = "confluent_cloud", "t1"
NOW = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)
DAYS = [date(2026, 3, 16), date(2026, 3, 17), date(2026, 3, 18)]
IDENTITIES = {"sa-1": "Payments app", "sa-2": "Fraud model", "u-3": "Dana"}
RESOURCES = {"lkc-1": "orders", "lkc-2": "events"}


def rows_for(day: date, salt: int = 0) -> list[ChargebackRow]:
    """A day's rows with amounts that differ per day and do not add up to round numbers."""
    rows = []
    for i, identity in enumerate(sorted(IDENTITIES)):
        for j, resource in enumerate(sorted(RESOURCES)):
            for cost_type in CostType:
                amount = Decimal(day.day * 7 + i * 3 + j + salt) / Decimal(7)
                rows.append(
                    ChargebackRow(
                        ecosystem=ECOSYSTEM,
                        tenant_id=TENANT_ID,
                        timestamp=day_start(day),
                        resource_id=resource,
                        product_category="KAFKA",
                        product_type="KAFKA_NUM_CKU"
                        if cost_type is CostType.SHARED
                        else "KAFKA_NETWORK_READ",
                        identity_id=identity,
                        cost_type=cost_type,
                        amount=amount.quantize(Decimal("0.0001")),
                        allocation_method="usage_ratio",
                        env_id="env-1",
                    )
                )
    return rows


def bill_for(rows: list[ChargebackRow]) -> list[BillingLine]:
    """The bill those rows allocate: one line per (resource, product type) with their exact sum."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row.resource_id or "", row.product_type] += row.amount
    return [
        BillingLine(
            ECOSYSTEM,
            TENANT_ID,
            rows[0].timestamp,
            resource,
            "KAFKA",
            product,
            Decimal(1),
            total,
            total,
            env_id="env-1",
        )
        for (resource, product), total in sorted(totals.items())
    ]


def store_day(tx: Transaction, day: date, rows: list[ChargebackRow]) -> None:
    """A calculated day as the pipeline leaves it: its bill, its rows, a new calculation id, the fingerprint
    of the bill it was calculated from."""
    bill = bill_for(rows)
    replace_billing_day(tx, ECOSYSTEM, TENANT_ID, day, bill)
    replace_chargeback_day(tx, ECOSYSTEM, TENANT_ID, day, rows)
    update_state(
        tx,
        ECOSYSTEM,
        TENANT_ID,
        day,
        calculation_id=str(uuid.uuid4()),
        calculation_fingerprint=billing_fingerprint(bill),
    )


def open_data(
    storage: StorageTarget, emitters: list[dict[str, Any]], tags: dict[str, Any] | None = None
) -> TenantData:
    raw = {
        "storage": storage.section,
        "tenants": {
            "prod": {
                "ecosystem": ECOSYSTEM,
                "tenant_id": TENANT_ID,
                "start_date": "2026-03-01",
                "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
                "emitters": emitters,
                "tags": tags or {},
            }
        },
    }
    tenant = parse_config(raw, {}).tenants["prod"]
    return TenantData(tenant, storage.open())


@pytest.fixture
def stored(storage: StorageTarget) -> Iterator[ChargebackDatabase]:
    db = storage.open()
    with db.transaction() as tx:
        seen = datetime(2026, 3, 1, tzinfo=UTC)
        upsert_identities(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            [Identity(ECOSYSTEM, TENANT_ID, i, "service_account", name) for i, name in IDENTITIES.items()],
            seen,
        )
        upsert_resources(
            tx,
            ECOSYSTEM,
            TENANT_ID,
            [Resource(ECOSYSTEM, TENANT_ID, r, "kafka_cluster", name) for r, name in RESOURCES.items()],
            seen,
        )
        for day in DAYS:
            store_day(tx, day, rows_for(day))
    yield db
    db.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def csv_emitter(out: Path, **extra: Any) -> dict[str, Any]:
    return {"type": "csv", "name": "files", "params": {"output_dir": str(out)}, **extra}


def test_csv_files_read_back_equal_the_database_rows_to_the_cent(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    (run,) = emit_days(data, "csv", DAYS, now=NOW)
    assert run.emitted == DAYS and run.failed == {} and run.skipped == {}
    for day in DAYS:
        cells = read_csv(tmp_path / "csv" / f"t1_{day.isoformat()}.csv")
        db_rows = chargeback_rows_for_day(stored, ECOSYSTEM, TENANT_ID, day)
        got = sorted(
            (c["identity_id"], c["resource_id"], c["cost_type"], Decimal(c["amount"])) for c in cells
        )
        want = sorted((r.identity_id, r.resource_id, str(r.cost_type), r.amount) for r in db_rows)
        assert got == want
        assert sum(Decimal(c["amount"]) for c in cells) == sum(r.amount for r in db_rows)
        assert {(c["identity_id"], c["identity_name"], c["resource_name"]) for c in cells} == {
            (i, IDENTITIES[i], RESOURCES[r]) for i in IDENTITIES for r in RESOURCES
        }
    records = emission_records(stored, ECOSYSTEM, TENANT_ID, "files", PIPELINE)
    assert [(r.date, r.status, r.attempt_count) for r in records] == [(d, "emitted", 1) for d in DAYS]


def test_a_failed_emission_is_recorded_raised_and_retried_with_counted_attempts(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    out = tmp_path / "csv"
    out.write_text("a file where the output directory should be")
    data = open_data(storage, [csv_emitter(out)])
    with pytest.raises(EmissionFailed) as failed:
        emit_days(data, "csv", DAYS[:1], now=NOW)
    message = str(failed.value)
    assert "tenant prod" in message and "emitter files" in message and "2026-03-16" in message
    assert "cannot write" in message
    (record,) = emission_records(stored, ECOSYSTEM, TENANT_ID, "files", PIPELINE)
    assert (record.status, record.attempt_count) == ("failed", 1)
    assert "cannot write" in record.last_error

    out.unlink()
    (run,) = emit_days(data, "csv", DAYS[:1], now=NOW)
    assert run.emitted == DAYS[:1]
    (record,) = emission_records(stored, ECOSYSTEM, TENANT_ID, "files", PIPELINE)
    assert (record.status, record.attempt_count, record.last_error) == ("emitted", 2, None)
    assert (out / "t1_2026-03-16.csv").exists()


def test_dates_older_than_lookback_and_dates_without_rows_are_recorded_as_skipped(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv", lookback_days=3)])
    empty = date(2026, 3, 19)
    (run,) = emit_days(data, "csv", [*DAYS, empty], now=NOW)  # NOW - 3 days = 2026-03-17
    assert run.emitted == DAYS[1:]
    assert run.skipped == {DAYS[0]: "older than lookback_days (3)", empty: "no chargeback rows"}
    records = {r.date: r.status for r in emission_records(stored, ECOSYSTEM, TENANT_ID)}
    assert records == {DAYS[0]: "skipped", DAYS[1]: "emitted", DAYS[2]: "emitted", empty: "skipped"}
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["t1_2026-03-17.csv", "t1_2026-03-18.csv"]


def test_monthly_aggregation_writes_one_file_with_the_month_summed_per_dimension(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv", aggregation="monthly")])
    (run,) = emit_days(data, "csv", DAYS[1:2], now=NOW)
    assert run.emitted == DAYS[1:2]
    cells = read_csv(tmp_path / "csv" / "t1_2026-03-01.csv")
    assert {c["date"] for c in cells} == {"2026-03-01"}
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for day in DAYS:
        for r in chargeback_rows_for_day(stored, ECOSYSTEM, TENANT_ID, day):
            totals[(r.identity_id, r.resource_id, str(r.cost_type))] += r.amount
    assert {
        (c["identity_id"], c["resource_id"], c["cost_type"]): Decimal(c["amount"]) for c in cells
    } == totals
    assert len(cells) == len(totals)


def test_re_emitting_a_recalculated_day_replaces_its_file(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    emit_days(data, "csv", DAYS[:1], now=NOW)
    with stored.transaction() as tx:
        store_day(tx, DAYS[0], rows_for(DAYS[0], salt=5)[:2])
    emit_days(data, "csv", DAYS[:1], now=NOW)
    cells = read_csv(tmp_path / "csv" / "t1_2026-03-16.csv")
    assert [Decimal(c["amount"]) for c in cells] == [r.amount for r in rows_for(DAYS[0], salt=5)[:2]]
    (record,) = emission_records(stored, ECOSYSTEM, TENANT_ID)
    assert (record.status, record.attempt_count) == ("emitted", 2)


def test_config_and_stored_tags_reach_the_rows_and_resource_tags_win(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    with stored.transaction() as tx:
        for entity_type, entity_id, key, value in [
            ("identity", "sa-1", "team", "payments"),
            ("identity", "sa-1", "owner", "cli-owner"),
            ("resource", "lkc-2", "team", "platform"),
        ]:
            set_tag(tx, EntityTag(ECOSYSTEM, TENANT_ID, entity_type, entity_id, key, value, "cli", NOW))
    config_tags = {"identities": {"sa-1": {"owner": "config-owner", "tier": "gold"}}}
    data = open_data(storage, [csv_emitter(tmp_path / "csv")], tags=config_tags)
    emit_days(data, "csv", DAYS[:1], now=NOW)
    cells = read_csv(tmp_path / "csv" / "t1_2026-03-16.csv")
    tags = {(c["identity_id"], c["resource_id"]): json.loads(c["tags"]) for c in cells}
    gold = {"owner": "cli-owner", "tier": "gold"}
    assert tags[("sa-1", "lkc-1")] == {**gold, "team": "payments"}  # a CLI tag beats config
    assert tags[("sa-1", "lkc-2")] == {**gold, "team": "platform"}  # resource beats identity
    assert tags[("sa-2", "lkc-1")] == {}
    teams = read_csv(tmp_path / "csv" / "t1_2026-03-16_teams.csv")
    assert {t["team"] for t in teams} == {"payments", "platform", "UNTAGGED"}
    assert sum(Decimal(t["amount"]) for t in teams) == sum(Decimal(c["amount"]) for c in cells)

    # a config tag removed from the file leaves the table at the next emission; CLI tags stay
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    emit_days(data, "csv", DAYS[:1], now=NOW)
    assert {(t.tag_key, t.created_by) for t in list_tags(stored, ECOSYSTEM, TENANT_ID)} == {
        ("team", "cli"),
        ("owner", "cli"),
    }


def test_a_tenant_without_an_emitter_of_the_type_does_nothing(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    assert emit_days(data, "prometheus", DAYS, now=NOW) == []
    assert emission_records(stored, ECOSYSTEM, TENANT_ID) == []


TOLERANCE = Decimal("0.00005")
"""Prometheus stores float64: a day's sum per identity comes back within half a ten-thousandth."""


def test_the_openmetrics_file_backfilled_into_prometheus_gives_the_database_totals(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    out = tmp_path / "prom"
    data = open_data(storage, [{"type": "prometheus", "name": "metrics", "params": {"output_dir": str(out)}}])
    (run,) = emit_days(data, "prometheus", DAYS, now=NOW)
    assert run.emitted == DAYS
    with backfilled_prometheus(tmp_path, out / "t1.om") as url:
        for day in DAYS:  # every emitted day, not only the newest
            response = requests.get(
                f"{url}/api/v1/query",
                params={
                    "query": 'sum by (identity_id) (chargeback_amount{tenant_id="t1"})',
                    "time": int(day_start(day).timestamp()),
                },
                timeout=10,
            ).json()
            got = {s["metric"]["identity_id"]: Decimal(s["value"][1]) for s in response["data"]["result"]}
            want: dict[str, Decimal] = defaultdict(Decimal)
            for r in chargeback_rows_for_day(stored, ECOSYSTEM, TENANT_ID, day):
                want[r.identity_id] += r.amount
            assert got.keys() == want.keys(), day
            for identity, amount in want.items():
                assert abs(got[identity] - amount) <= TOLERANCE, (day, identity, got[identity], amount)


def test_an_emission_leaves_the_garbage_collector_on(tmp_path: Path, storage: StorageTarget, stored) -> None:
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    (run,) = emit_days(data, "csv", DAYS, now=NOW)
    assert run.rows == 3 * len(rows_for(DAYS[0])) and gc.isenabled()


def test_a_day_that_does_not_reconcile_is_blocked_its_output_withdrawn_and_the_others_emitted(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    emitters = [
        csv_emitter(tmp_path / "csv"),
        csv_emitter(tmp_path / "more", name="more"),
        {"type": "prometheus", "name": "om", "params": {"output_dir": str(tmp_path / "om")}},
    ]
    data = open_data(storage, emitters)
    for emitter_type in ("csv", "prometheus"):
        emit_days(data, emitter_type, DAYS, now=NOW)  # every day published once
    with stored.transaction() as tx:  # then the stored rows of one day no longer sum to its bill
        replace_chargeback_day(tx, ECOSYSTEM, TENANT_ID, DAYS[1], rows_for(DAYS[1])[1:])
    assert not check_reconciliation(data, DAYS[1]).passed  # what the blocking check finds, before emission
    runs = emit_days(data, "csv", DAYS, now=NOW)
    for run, folder in zip(runs, ("csv", "more"), strict=True):
        assert run.emitted == [DAYS[0], DAYS[2]]
        assert list(run.blocked) == [DAYS[1]]
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [
            "t1_2026-03-16.csv",
            "t1_2026-03-18.csv",
        ]
    records = emission_records(stored, ECOSYSTEM, TENANT_ID, "files", PIPELINE)
    assert [(r.date, r.status) for r in records] == [
        (DAYS[0], "emitted"),
        (DAYS[1], "blocked"),
        (DAYS[2], "emitted"),
    ]
    assert "does not reconcile" in records[1].last_error
    assert f"earlier output withdrawn: {tmp_path / 'csv' / 't1_2026-03-17.csv'}" in records[1].last_error

    (om_run,) = emit_days(data, "prometheus", DAYS, now=NOW)
    assert list(om_run.blocked) == [DAYS[1]]
    published = (tmp_path / "om" / "t1.om").read_text()
    stamps = {int(day_start(day).timestamp()) for day in DAYS}
    shown = {
        int(line.rsplit(" ", 1)[1])
        for line in published.splitlines()
        if line.startswith("chargeback_amount{")
    }
    assert shown == stamps - {int(day_start(DAYS[1]).timestamp())}


def test_a_published_day_follows_the_database_even_older_than_lookback_and_an_uncalculated_one_is_kept(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    out = tmp_path / "csv"
    emit_days(open_data(storage, [csv_emitter(out)]), "csv", DAYS, now=NOW)
    restated = rows_for(DAYS[0], salt=3)[:4]
    with stored.transaction() as tx:
        store_day(tx, DAYS[0], restated)  # older than the lookback below, published before: re-emitted
        store_day(tx, DAYS[1], [])  # emptied at the source and calculated again: withdrawn
        update_state(tx, ECOSYSTEM, TENANT_ID, DAYS[1], chargeback_calculated=True)
        store_day(tx, DAYS[2], [])  # its rows gone without a calculation (retention): its file is kept
    (run,) = emit_days(open_data(storage, [csv_emitter(out, lookback_days=3)]), "csv", DAYS, now=NOW)
    assert run.emitted == [DAYS[0]]
    assert list(run.emptied) == [DAYS[1]] and run.skipped == {DAYS[2]: "no chargeback rows"}
    assert [Decimal(c["amount"]) for c in read_csv(out / "t1_2026-03-16.csv")] == [r.amount for r in restated]
    assert sorted(p.name for p in out.iterdir()) == ["t1_2026-03-16.csv", "t1_2026-03-18.csv"]
    records = emission_records(stored, ECOSYSTEM, TENANT_ID, "files", PIPELINE)
    assert [(r.status, r.attempt_count) for r in records] == [
        ("emitted", 2),
        ("withdrawn", 2),
        ("skipped", 2),
    ]
    assert records[0].last_error == f"{RESTATED}; replaced the output emitted at 2026-03-20T06:00:00+00:00"
    assert (
        records[1].last_error == f"no chargeback rows; earlier output withdrawn: {out / 't1_2026-03-17.csv'}"
    )


def test_outputs_say_which_days_are_settled_and_a_settled_day_restated_later_says_so_for_good(
    tmp_path: Path, storage: StorageTarget, stored
) -> None:
    # NOW is 2026-03-20 and settle_days is 3: the 16th is settled, the 17th and 18th are provisional
    data = open_data(storage, [csv_emitter(tmp_path / "csv")])
    emit_days(data, "csv", DAYS, now=NOW)
    out = tmp_path / "csv"

    def flags(day: date) -> set[tuple[str, str, str]]:
        return {(c["currency"], c["settled"], c["restated"]) for c in read_csv(out / f"t1_{day}.csv")}

    assert [flags(day) for day in DAYS] == [
        {("USD", "true", "false")},
        {("USD", "false", "false")},
        {("USD", "false", "false")},
    ]
    with stored.transaction() as tx:  # the provider revises a settled day and a provisional one
        store_day(tx, DAYS[0], rows_for(DAYS[0], salt=4))
        store_day(tx, DAYS[2], rows_for(DAYS[2], salt=4))
    emit_days(data, "csv", [DAYS[0], DAYS[2]], now=NOW)
    assert [flags(day) for day in DAYS] == [
        {("USD", "true", "true")},
        {("USD", "false", "false")},
        {("USD", "false", "false")},  # a provisional day may change: that is no restatement
    ]
    records = {r.date: r for r in emission_records(stored, ECOSYSTEM, TENANT_ID)}
    assert records[DAYS[0]].last_error is not None and records[DAYS[0]].last_error.startswith(RESTATED)
    assert records[DAYS[0]].published is not None and records[DAYS[0]].published.restated
    assert not records[DAYS[2]].published.restated and RESTATED not in (records[DAYS[2]].last_error or "")
    emit_days(data, "csv", [DAYS[0]], now=NOW)  # emitted again, unchanged: still a restated day
    assert flags(DAYS[0]) == {("USD", "true", "true")}
