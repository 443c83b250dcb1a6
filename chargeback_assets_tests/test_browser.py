"""The README's tour of the Dagster UI, clicked label by label in headless Chromium (Debian `chromium`,
driven by Playwright through `executable_path`) against the real webserver and daemon.

The README's "In the Dagster UI" steps quote Dagster's labels in italics; this test reads them and clicks
them in the same order, asserting what each step promises: the failing check counted on the lineage node,
a partition's own figures, the plots, one tenant's events, Failed on exactly the tampered partition, and a
backfill launched from the dialog. Screenshots of the lineage and the plots are kept in test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from chargeback_assets.storage.codec import day_bounds
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import (
    REPO_ROOT,
    DagsterServers,
    prepare_dagster_home,
    running_dagster,
)
from chargeback_assets_tests.graph import Graph, running_graph
from chargeback_assets_tests.webserver_queries import (
    launch_backfill,
    launch_run,
    wait_for_backfill,
    wait_for_run,
)

CHROMIUM = "/usr/bin/chromium"
# The Debian wrapper works as executable_path. No GPU, QUIC, sync or update traffic: the machine is offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
UI_TIMEOUT_MS = 60_000
TENANTS = ("acme-prod", "acme-staging")
DAYS = 6
ITALIC = re.compile(r"(?<![*\w])\*([^*\n]+)\*(?![*\w])")

pytestmark = pytest.mark.slow

BACKFILLS = """
query Backfills {
  partitionBackfillsOrError(limit: 20) {
    ... on PartitionBackfills { results { id numPartitions partitionNames assetSelection { path } } }
  }
}
"""


def readme_labels() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### In the Dagster UI", 1)[1].split("\n## ", 1)[0]
    return ITALIC.findall(section)


@dataclass
class Tampered:
    """Two days of both tenants backfilled; one partition's facts changed and its check run again."""

    graph: Graph
    servers: DagsterServers
    days: list[date]
    bad: str
    good: str


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tampered]:
    workdir = tmp_path_factory.mktemp("browser")
    settings = {
        tenant: {
            "emitters": [{"type": "csv", "name": "csv", "params": {"output_dir": str(workdir / "csv")}}],
            # The node's count of passed checks must not depend on how much of the sandbox's days has no
            # payer: only the tampered partition's check fails.
            "unattributed_warn_fraction": "1",
        }
        for tenant in TENANTS
    }
    with running_graph(workdir, days=DAYS, tenant_settings=settings) as graph:
        home = prepare_dagster_home(workdir / "dagster_home")
        with running_dagster(home, graph.config_path, daemon=True) as servers:
            days = [graph.newest - timedelta(days=1), graph.newest]
            keys = [f"{day.isoformat()}|{tenant}" for day in days for tenant in TENANTS]
            runs = wait_for_backfill(servers, launch_backfill(servers, PARTITIONED, keys))
            assert all(run["status"] == "SUCCESS" for run in runs), runs
            bad, good = f"{days[0].isoformat()}|acme-prod", f"{days[1].isoformat()}|acme-prod"
            with sqlite3.connect(graph.db_path) as conn:
                conn.execute(
                    "UPDATE chargeback_facts SET amount = '4242.0000' WHERE rowid = (SELECT rowid FROM "
                    "chargeback_facts WHERE tenant_id = 'acme-prod' AND timestamp LIKE ? LIMIT 1)",
                    (f"{days[0].isoformat()}%",),
                )
            run_id = launch_run(
                servers, ["chargeback_csv"], [("chargeback_facts", "chargeback_reconciles")], bad, good
            )
            assert wait_for_run(servers, run_id) == "FAILURE"
            yield Tampered(graph, servers, days, bad, good)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if executable is None:
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package `chromium` (make system-deps)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Large enough that the fitted lineage graph is drawn with each node's partition details.
    context = browser.new_context(viewport={"width": 2200, "height": 1300})
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def billed_exact(graph: Graph, tenant: str, day: date) -> str:
    """The day's bill as the partition shows it, computed here from the database."""
    start, end = day_bounds(day)
    with sqlite3.connect(graph.db_path) as conn:
        cells = conn.execute(
            "SELECT total_cost FROM billing WHERE tenant_id = ? AND timestamp >= ? AND timestamp < ?",
            (tenant, start, end),
        ).fetchall()
    return f"{sum((Decimal(c) for (c,) in cells), Decimal(0))} USD"


def test_the_readme_tour_of_the_ui_holds(tampered: Tampered, page: Page) -> None:
    base = tampered.servers.url
    dialog = page.get_by_role("dialog").first
    good_day, tenant = tampered.good.split("|")
    ARTIFACTS.mkdir(exist_ok=True)

    def sidebar(label: str) -> None:
        page.get_by_role("navigation").get_by_text(label, exact=True).click()

    def tab(label: str) -> None:
        page.get_by_role("tab", name=label, exact=True).first.click()

    def lineage(label: str) -> None:
        sidebar(label)
        page.get_by_text("allocate", exact=True).first.wait_for()
        page.keyboard.press("Alt+e")
        for name in PARTITIONED:
            page.get_by_text(name, exact=True).first.wait_for()
        # The node of chargeback_facts counts the check that failed on one partition (of its five).
        expect(page.get_by_text("4 / 5 Passed", exact=True)).to_be_visible()
        page.get_by_text(f"{DAYS * 2} partitions", exact=True).first.wait_for()
        page.screenshot(path=ARTIFACTS / "lineage.png", full_page=True)

    def catalog(label: str) -> None:
        sidebar(label)
        page.get_by_role("link", name="chargeback_facts").first.click()
        page.get_by_role("tab", name="Overview", exact=True).wait_for()

    def partitions_tab(label: str) -> None:
        tab(label)
        page.get_by_placeholder("Filter by tenant").wait_for()
        page.get_by_text(good_day, exact=True).first.click()
        page.get_by_text(tenant, exact=True).first.click()
        page.get_by_text(tampered.good, exact=True).first.wait_for()
        expected = billed_exact(tampered.graph, tenant, date.fromisoformat(good_day))
        expect(page.get_by_text(expected, exact=True).first).to_be_visible()

    def plots(label: str) -> None:
        button(page, label).click()

    def plot_by_partition(label: str) -> None:
        button(page, label).click()
        note = page.get_by_text("When graphing values by partition", exact=False)
        note.wait_for()
        for title in ("billed", "allocated", "dagster/row_count"):
            expect(page.get_by_text(title, exact=True).first).to_be_attached()
        page.get_by_text("billed", exact=True).first.scroll_into_view_if_needed()
        expect(page.get_by_text("billed", exact=True).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "plots.png")

    def filter_partition(label: str) -> None:
        page.get_by_text(label, exact=True).click()
        page.keyboard.type("acme-staging")

    def select_all(label: str) -> None:
        page.get_by_text(label, exact=True).click()
        button(page, "Filter").click()  # closes the filter menu
        page.get_by_text(label, exact=True).wait_for(state="hidden")
        events = page.get_by_text(re.compile(r"^\d{4}-\d{2}-\d{2}\|acme-[a-z]+$"))
        expect(events.first).to_be_visible()
        shown = {events.nth(i).inner_text() for i in range(events.count())}
        assert shown == {f"{day.isoformat()}|acme-staging" for day in tampered.days}, shown

    def check_partitions(label: str) -> None:
        page.get_by_text("chargeback_reconciles", exact=True).first.click()
        page.get_by_role("tab", name=label, exact=True).last.click()
        expect(page.get_by_text("Failed (1)", exact=True)).to_be_visible()
        expect(page.get_by_text("Passed (3)", exact=True)).to_be_visible()

    def materialize(label: str) -> None:
        button(page, label).first.click()
        dates = dialog.get_by_placeholder("ex: ", exact=False)
        dates.fill(f"[{tampered.days[0].isoformat()}...{tampered.days[1].isoformat()}]")
        dates.press("Enter")

    def all_tenants(label: str) -> None:
        button(dialog, label).last.click()
        expect(dialog.get_by_text("4 partitions", exact=True)).to_be_visible()

    def tags(label: str) -> None:
        dialog.get_by_text(label, exact=True).first.click()

    def launch(label: str) -> None:
        before = _backfill_ids(tampered.servers)
        button(dialog, label).click()
        expect(page.get_by_text("Launch runs to materialize chargeback_facts")).to_be_hidden()
        launched = [b for b in _backfills(tampered.servers) if b["id"] not in before]
        assert len(launched) == 1, launched
        assert sorted(launched[0]["partitionNames"]) == sorted(
            f"{day.isoformat()}|{t}" for day in tampered.days for t in TENANTS
        )
        assert launched[0]["assetSelection"] == [{"path": ["chargeback_facts"]}]

    def automation(label: str) -> None:
        sidebar(label)
        for name in ("daily_chargeback_schedule", "billing_change_sensor"):
            expect(page.get_by_text(name, exact=True).first).to_be_visible()

    steps: list[tuple[str, Callable[[str], None]]] = [
        ("Lineage", lineage),
        ("Catalog", catalog),
        ("Partitions", partitions_tab),
        ("Overview", tab),
        ("Plots", plots),
        ("Partitions", plot_by_partition),
        ("Events", tab),
        ("Filter", lambda label: button(page, label).click()),
        ("Partition", filter_partition),
        ("Select all", select_all),
        ("Checks", tab),
        ("Partitions", check_partitions),
        ("Materialize…", materialize),
        ("All", all_tenants),
        ("Tags", tags),
        ("Launch backfill", launch),
        ("Automation", automation),
    ]
    assert readme_labels() == [label for label, _ in steps]
    page.goto(base)
    for label, step in steps:
        step(label)


def button(scope: Page | Locator, label: str) -> Locator:
    """A button by its visible label: Dagster's accessible names start with the icon's name."""
    return scope.get_by_role("button", name=re.compile(rf"(^|\s){re.escape(label)}$"))


def _backfills(servers: DagsterServers) -> list[dict]:
    return servers.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]


def _backfill_ids(servers: DagsterServers) -> set[str]:
    return {backfill["id"] for backfill in _backfills(servers)}
