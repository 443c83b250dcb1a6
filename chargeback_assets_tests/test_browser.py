"""The Dagster UI in headless Chromium (Debian `chromium`, driven by Playwright through `executable_path`):
the lineage page shows the asset graph, the partitions page shows the date × tenant dimensions. The lineage
screenshot is kept in test-artifacts/ for a human to look at."""

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from chargeback_assets.constants import ALLOCATE
from chargeback_assets_tests.assets.test_graph import PARTITIONED
from chargeback_assets_tests.dagster_processes import REPO_ROOT, ServedGraph, served_graph

DAYS = 7
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

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGraph]:
    with served_graph(tmp_path_factory.mktemp("browser"), days=DAYS) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if executable is None:
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package `chromium` (make system-deps)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
        )
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


def test_lineage_page_shows_the_asset_graph(served: ServedGraph, page: Page, tmp_path: Path) -> None:
    page.goto(f"{served.servers.url}/asset-groups")
    # The global lineage shows one collapsed box per asset group; "Expand all groups" (graph settings,
    # shortcut Alt+E) draws the assets.
    page.get_by_text(ALLOCATE, exact=True).first.wait_for()
    page.keyboard.press("Alt+e")
    for name in PARTITIONED:
        page.get_by_text(name, exact=True).first.wait_for()
    # Partition counts and fill arrive after the nodes: 1 of DAYS × 2 partitions is materialized.
    total = DAYS * 2
    page.get_by_text(f"{total} partitions", exact=True).first.wait_for()
    page.get_by_text(f"{round(100 / total)}% filled", exact=True).first.wait_for()

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = page.screenshot(path=ARTIFACTS / "lineage.png", full_page=True)
    (tmp_path / "lineage.png").write_bytes(screenshot)
    for name in PARTITIONED:
        assert page.get_by_text(name, exact=True).first.is_visible(), name
    assert page.get_by_text(f"{total} partitions", exact=True).count() >= len(PARTITIONED)


def test_partitions_page_shows_date_by_tenant(served: ServedGraph, page: Page, tmp_path: Path) -> None:
    page.goto(f"{served.servers.url}/assets/chargeback_facts?view=partitions")
    # One list per dimension, each with its own filter box.
    for dimension in ("date", "tenant"):
        page.get_by_placeholder(f"Filter by {dimension}").wait_for()
    for tenant in ("acme-prod", "acme-staging"):
        page.get_by_text(tenant, exact=True).first.wait_for()
    for offset in range(DAYS):
        page.get_by_text(
            (served.graph.newest - timedelta(days=offset)).isoformat(), exact=True
        ).first.wait_for()
    for text in (f"{DAYS * 2} Partitions Selected", "Materialized (1)", f"Missing ({DAYS * 2 - 1})"):
        page.get_by_text(text, exact=True).wait_for()
    page.screenshot(path=tmp_path / "partitions.png", full_page=True)
