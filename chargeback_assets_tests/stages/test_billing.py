"""The billing stage against hostile Cost rows served by the sandbox over HTTP, into a real SQLite file:
unreadable amounts are never zero, a repeated row is charged once, a stray is charged to no day, and an
absurd amount costs only its own day."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from chargeback_assets.ecosystems.confluent_cloud.billing import FetchedRows
from chargeback_assets.engine.fingerprint import billing_fingerprint
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.runtime import build_runtime
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config
from chargeback_assets.stages import billing
from chargeback_assets.stages.billing import current_fingerprints, fetch_bill, gather_billing
from chargeback_assets.stages.checks import billing_problems, malformed_lines
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.storage.billing import billing_for_day, billing_strays_for_day
from chargeback_assets_tests.databases import StorageTarget

TODAY = datetime.now(UTC).date()
D1, D2, D3 = (TODAY - timedelta(days=offset) for offset in (4, 3, 2))
ECOSYSTEM, TENANT = "confluent_cloud", "t1"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(generate_org("small", seed=5, end_date=TODAY, days=8)) as running:
        yield running


Scoped = Callable[..., AbstractContextManager[TenantScope]]


@pytest.fixture
def scoped(tmp_path: Path, storage: StorageTarget, server: SandboxServer) -> Scoped:
    configs = iter(range(100))

    @contextmanager
    def scope(**tenant_settings: Any) -> Iterator[TenantScope]:
        """Tenant t1 on the sandbox with `tenant_settings`; every scope shares one database file, and has
        its own config file (configs are cached by path)."""
        tenant = sandbox_tenant(
            server.org, server, tenant_id=TENANT, start_date=TODAY - timedelta(days=8), **tenant_settings
        )
        config = tmp_path / f"chargeback-{next(configs)}.yaml"
        resource = ChargebackResource(
            config_path=str(write_config(config, {TENANT: tenant}, storage.section))
        )
        runtime = build_runtime(resource.tenant(TENANT))
        try:
            with resource.database() as db:
                yield TenantScope(resource.tenant(TENANT), db, runtime)
        finally:
            runtime.close()

    return scope


def original_rows(server: SandboxServer, day: date) -> list[dict[str, Any]]:
    return [row for row in server.org.costs if row["start_date"] == day.isoformat()]


def bill_of(rows: list[dict[str, Any]]) -> Decimal:
    """A day's bill straight from Cost rows, without any of our code."""
    total = sum((Decimal(str(row["amount"])) for row in rows), Decimal(0))
    return total.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_unreadable_amounts_are_kept_charge_nothing_and_are_named(scoped: Scoped, server) -> None:
    """`"12.5USD"`, null and a missing amount: each row is kept as a malformed line with its raw value and
    charges nothing, the day's valid lines are charged in full, and the other day is untouched."""
    good = original_rows(server, D2)
    template = {**good[0], "resource": {"id": "lkc-unreadable", "environment": {"id": "env-x"}}}
    text = {**template, "id": "dlz-text", "amount": "12.5USD"}
    null = {**template, "id": "dlz-null", "amount": None}
    missing = {k: v for k, v in {**template, "id": "dlz-missing"}.items() if k != "amount"}
    server.replace_costs(D2, [*good, text, null, missing])
    with scoped() as scope:
        days = {day.day: day for day in gather_billing(scope, [D1, D2])}

        assert days[D2].malformed == 3
        assert days[D2].billed == bill_of(good)
        assert (days[D1].malformed, days[D1].billed) == (0, bill_of(original_rows(server, D1)))
        kept = [
            line
            for line in billing_for_day(scope.db, ECOSYSTEM, TENANT, D2)
            if line.metadata.get("malformed")
        ]
        assert {line.metadata["row_id"]: line.metadata.get("raw_amount") for line in kept} == {
            "dlz-text": '"12.5USD"',
            "dlz-null": "null",
            "dlz-missing": None,
        }
        assert all(line.total_cost == 0 for line in kept)
        resource = {line.metadata["row_id"]: line.resource_id for line in kept}
        line_type = template["line_type"]
        assert sorted(malformed_lines(scope, D2)) == [
            f"{D2} row dlz-missing ({line_type} {resource['dlz-missing']}), raw amount <missing>: "
            "amount is missing",
            f"{D2} row dlz-null ({line_type} {resource['dlz-null']}), raw amount null: "
            "amount is not a number",
            f'{D2} row dlz-text ({line_type} {resource["dlz-text"]}), raw amount "12.5USD": '
            "amount is not a number",
        ]
        assert billing_problems(scope, D1) == []

        server.revert_bill(D2)  # the source fixes the rows: the day's next gather is well formed
        [fixed] = gather_billing(scope, [D2])
        assert (fixed.malformed, fixed.billed) == (0, bill_of(good))
        assert billing_problems(scope, D2) == []


def test_duplicates_strays_and_an_absurd_amount_each_stay_on_their_own_day(scoped: Scoped, server) -> None:
    """D1 is served with one row twice (pages that overlap), D2 with a row dated 40 days earlier, D3 with an
    amount of 1e30. One request covers the three days; every day is written and charged its real bill."""
    first, second, third = (original_rows(server, day) for day in (D1, D2, D3))
    stray = {**second[0], "id": "dlz-stray", "start_date": (D1 - timedelta(days=40)).isoformat()}
    huge = {**third[0], "id": "dlz-huge", "amount": 1e30, "resource": {"id": "lkc-huge"}}
    server.replace_costs(D1, [*first, first[0]])
    server.replace_costs(D2, [*second, stray])
    server.replace_costs(D3, [*third, huge])
    with scoped() as scope:
        days = {day.day: day for day in gather_billing(scope, [D1, D2, D3])}

        assert {day: days[day].billed for day in days} == {
            D1: bill_of(first),
            D2: bill_of(second),
            D3: bill_of(third),
        }
        assert [(days[d].duplicates, days[d].strays, days[d].malformed) for d in (D1, D2, D3)] == [
            (1, 1, 0),  # the stray is reported with the first day asked for
            (0, 0, 0),
            (0, 0, 1),
        ]
        [kept_stray] = billing_strays_for_day(scope.db, ECOSYSTEM, TENANT, D1)
        assert kept_stray.metadata["row_id"] == "dlz-stray"
        assert billing_problems(scope, D1) == [
            f"{D1} stray row dlz-stray ({stray['line_type']} {stray['resource']['id']}) dated "
            f"{D1 - timedelta(days=40)}, amount {kept_stray.total_cost}: outside the days requested, "
            "not charged"
        ]
        assert billing_problems(scope, D2) == []
        [absurd] = [
            line
            for line in billing_for_day(scope.db, ECOSYSTEM, TENANT, D3)
            if line.metadata.get("malformed")
        ]
        assert (absurd.resource_id, absurd.total_cost) == ("lkc-huge", 0)
        assert billing_problems(scope, D3) == [
            f"{D3} row dlz-huge ({huge['line_type']} lkc-huge), raw amount 1E+30: "
            "amount exceeds max_line_amount 10000000"
        ]


def test_max_line_amount_is_the_tenants(scoped: Scoped) -> None:
    """The same day under a limit of 5: exactly the lines above 5 (either sign) are refused, each keeping
    the amount it had."""
    with scoped() as scope:
        gather_billing(scope, [D1])
        usual = billing_for_day(scope.db, ECOSYSTEM, TENANT, D1)
    within = [line for line in usual if abs(line.total_cost) <= 5]
    assert 0 < len(within) < len(usual)
    with scoped(max_line_amount="5") as scope:
        [day] = gather_billing(scope, [D1])
        stored = billing_for_day(scope.db, ECOSYSTEM, TENANT, D1)
    assert (day.malformed, day.billed) == (len(usual) - len(within), sum(line.total_cost for line in within))
    refused = {
        line.resource_id + line.product_type: line for line in stored if line.metadata.get("malformed")
    }
    assert {key: line.metadata["raw_amount"] for key, line in refused.items()} == {
        line.resource_id + line.product_type: line.metadata.get("raw_amount", str(line.total_cost))
        for line in usual
        if abs(line.total_cost) > 5
    }


def read_whole(scope: TenantScope, days: list[date]) -> dict[date, str]:
    """Each day's fingerprint from the whole bill read into lines, as a gather records it."""
    return {day: billing_fingerprint(lines) for day, lines in fetch_bill(scope, days).by_day.items()}


@pytest.fixture
def days_read(monkeypatch: pytest.MonkeyPatch) -> list[list[date] | None]:
    """The days each tick read into lines (None: the whole bill), from a process that saw no tick before."""
    monkeypatch.setattr(billing, "_fingerprints_by_rows", {})
    read: list[list[date] | None] = []
    lines_of = FetchedRows.lines

    def lines(self: FetchedRows, days: Any = None) -> list:
        read.append(None if days is None else sorted(days))
        return lines_of(self, days)

    monkeypatch.setattr(FetchedRows, "lines", lines)
    return read


def test_a_tick_reads_only_the_days_whose_rows_changed(scoped: Scoped, server, days_read) -> None:
    """The first tick reads every day; the next ones only a day the source revised, and each gives exactly
    the fingerprints of the whole bill read again. Another max_line_amount reads every day again."""
    days = [D1, D2, D3]
    with scoped() as scope:
        first = current_fingerprints(scope, days)
        assert current_fingerprints(scope, days) == first
        server.revise_bill(D2, "1.25")
        revised = current_fingerprints(scope, days)
        assert revised == read_whole(scope, days)
    assert days_read == [days, [D2]]
    assert [day for day in days if revised[day] != first[day]] == [D2]

    with scoped(max_line_amount="5") as scope:
        assert current_fingerprints(scope, days) == read_whole(scope, days) != revised
    assert days_read[2:] == [days]


def test_a_bill_that_does_not_split_by_day_is_read_whole(scoped: Scoped, server, days_read) -> None:
    """A stray row (dated outside the days asked for) or a row id on two days: a day's lines could depend on
    another day's rows, so every tick reads the whole bill, with the fingerprints a gather records."""
    first, second = original_rows(server, D1), original_rows(server, D2)
    days = [D1, D2, D3]
    with scoped() as scope:
        server.replace_costs(D2, [*second, {**second[0], "id": "dlz-stray", "start_date": "2001-01-01"}])
        assert current_fingerprints(scope, days) == read_whole(scope, days)
        server.replace_costs(D2, [*second, {**first[0], "start_date": D2.isoformat()}])
        assert current_fingerprints(scope, days) == read_whole(scope, days)
        server.revert_bill(D2)
        assert current_fingerprints(scope, days) == read_whole(scope, days)
    assert days_read == [None, None, days]
