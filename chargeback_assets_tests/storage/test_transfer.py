"""`python -m chargeback_assets storage copy`: a SQLite database made by real runs of the graph, copied into
PostgreSQL and back, row for row; a destination that holds rows, or that changes what it is given, keeps
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from chargeback_assets.__main__ import main
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.tags import EntityTag, set_tag
from chargeback_assets.storage.tenants import tenant_tables
from chargeback_assets.storage.transfer import Contents, contents
from chargeback_assets_tests.graph import TENANT_SEEDS, running_graph
from chargeback_assets_tests.real_postgres import PASSWORD, PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ECOSYSTEM = "confluent_cloud"


@pytest.fixture(scope="module")
def graph_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The SQLite file of 3 days of both sandbox tenants, materialized by real runs, and a custom tag."""
    workdir = tmp_path_factory.mktemp("graph")
    with running_graph(workdir, days=4) as graph, dg.instance_for_test() as instance:
        first = graph.newest - timedelta(days=2)
        for tenant in TENANT_SEEDS:
            assert graph.run(tenant, first, graph.newest, instance=instance).success
        with ChargebackDatabase.open(graph.db_path) as db, db.transaction() as tx:
            set_tag(tx, tag("team", "payments"))
        yield graph.db_path


def tag(key: str, value: str) -> EntityTag:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return EntityTag(ECOSYSTEM, "acme-prod", "identity", "sa-payments", key, value, "ops@example.com", at)


def every_row(path: str) -> dict[str, list[tuple]]:
    with ChargebackDatabase.open(path) as db:
        return {
            table: sorted(db.conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tenant_tables(db)
        }


def without_password(url: str) -> str:
    return url.replace(f":{PASSWORD}@", "@")


def test_a_graph_database_goes_to_postgresql_and_back_unchanged(
    graph_database: Path,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = without_password(postgres_server.create_database("copied"))
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # libpq's own variable: no password on the command line
    assert main(["storage", "copy", "--from", str(graph_database), "--to", url]) == 0
    there = capsys.readouterr().out
    with ChargebackDatabase.connect(url) as copy, copy.transaction() as tx:
        set_tag(tx, tag("cost-center", "cc-17"))  # a new row numbered by PostgreSQL, after the copied ones
    back = tmp_path / "back.db"
    assert main(["storage", "copy", "--from", url, "--to", str(back)]) == 0
    again = capsys.readouterr().out

    original_rows, back_rows = every_row(str(graph_database)), every_row(str(back))
    assert set(back_rows.pop("custom_tags")) > set(original_rows.pop("custom_tags"))
    assert back_rows == original_rows
    with ChargebackDatabase.open(back) as db:
        numbered = db.conn.execute("SELECT tag_id, tag_key FROM custom_tags ORDER BY tag_id").fetchall()
    assert numbered == [(1, "team"), (2, "cost-center")]
    with ChargebackDatabase.open(graph_database) as db, ChargebackDatabase.open(back) as copy:
        original, copied = contents(db), contents(copy)
    assert original.rows["chargeback_facts"] > 0 and original.rows["billing"] > 0
    assert len({(ecosystem, tenant) for ecosystem, tenant, _ in original.days}) == 2
    assert (copied.billed, copied.charged) == (original.billed, original.charged)
    assert_reported(there, original)
    assert_reported(again, copied)
    assert PASSWORD not in there + again


def assert_reported(output: str, expected: Contents) -> None:
    """The command printed each table's rows and each day's totals, the same on both sides."""
    lines = [line.split() for line in output.splitlines()]
    for table, rows in expected.rows.items():
        assert [table, str(rows), str(rows)] in lines, (table, rows)
    for ecosystem, tenant, day in expected.days:
        billed, charged = (
            str(expected.billed[ecosystem, tenant, day]),
            str(expected.charged[ecosystem, tenant, day]),
        )
        assert [f"{ecosystem}/{tenant}", day, billed, billed, charged, charged] in lines
    assert "!=" not in output


def test_the_same_database_or_one_with_rows_is_refused_unless_replaced_and_no_password_is_shown(
    graph_database: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.create_database("occupied")  # the password in the URL: it must not be echoed
    assert main(["storage", "copy", "--from", url, "--to", without_password(url)]) == 2
    assert "--from and --to name the same database" in capsys.readouterr().err
    assert main(["storage", "copy", "--from", str(graph_database), "--to", url]) == 0
    capsys.readouterr()
    assert main(["storage", "copy", "--from", str(graph_database), "--to", url]) == 1
    refused = capsys.readouterr()
    assert f"{without_password(url)} already holds rows (billing " in refused.err
    assert main(["storage", "copy", "--from", str(graph_database), "--to", url, "--replace"]) == 0
    replaced = capsys.readouterr()
    with ChargebackDatabase.open(graph_database) as source, ChargebackDatabase.connect(url) as copy:
        assert contents(copy) == contents(source)
    assert PASSWORD not in refused.out + refused.err + replaced.out + replaced.err


def test_a_copy_the_destination_alters_is_reported_and_rolled_back(
    graph_database: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.create_database("altering")
    with ChargebackDatabase.connect(url) as db:  # a destination that adds a cent to every chargeback row
        db.conn.execute(
            "CREATE FUNCTION add_a_cent() RETURNS trigger AS $$ "
            "BEGIN NEW.amount := NEW.amount + 0.01; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        db.conn.execute(
            "CREATE TRIGGER add_a_cent BEFORE INSERT ON chargeback_facts "
            "FOR EACH ROW EXECUTE FUNCTION add_a_cent()"
        )
    assert main(["storage", "copy", "--from", str(graph_database), "--to", url]) == 1
    report = capsys.readouterr()

    assert "the copy differs from the source; nothing was kept" in report.err
    differing = [line for line in report.out.splitlines() if line.endswith("!=")]
    with ChargebackDatabase.open(graph_database) as db:
        assert len(differing) == len(contents(db).charged)  # each day's charged total; no table's rows
    with ChargebackDatabase.connect(url) as copy:
        assert set(contents(copy).rows.values()) == {0}
