"""The Grafana dashboard (grafana/chargeback-dashboard.json): valid dashboard JSON whose every panel's PromQL,
run against a real Prometheus backfilled with the demo's OpenMetrics output and with the template variables
and time range filled in as Grafana fills them, gives the database's figures (read through the DataFrame
API) within 0.01. Grafana itself does not run: what it would send is computed here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from chargeback_assets import frames
from chargeback_assets.demo import TOPIC_TENANT
from chargeback_assets.engine.models import day_start
from chargeback_assets_tests.demo_history import DemoHistory, demo_history
from chargeback_assets_tests.graph import TENANT_SEEDS
from chargeback_assets_tests.real_prometheus import backfilled_prometheus

DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "chargeback-dashboard.json"
TOLERANCE = 0.01
STEP = 86400
"""Every time-series panel asks for one point per day (its min interval, `1d`)."""
TOP = 5
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table", "barchart", "piechart"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_the_dashboard_is_grafana_dashboard_json_on_a_templated_prometheus_datasource() -> None:
    board = dashboard()
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["uid"] and board["title"] and board["timezone"] == "utc"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["refId"] and target["expr"] and target["datasource"] == panel["datasource"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= {*variables, "__range", "__interval", "__rate_interval"}, panel["title"]


@dataclass(frozen=True)
class TimeRange:
    """An absolute Grafana time range: from the first day's 00:00 to the last day's 23:59:59.999, UTC."""

    first: date
    last: date

    @property
    def start_ms(self) -> int:
        return int(day_start(self.first).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(datetime.combine(self.last, time.max, UTC).timestamp() * 1000)


def grafana_variables(span: TimeRange, chosen: Mapping[str, str]) -> dict[str, str]:
    """What Grafana's Prometheus data source substitutes: `$__range` is the range rounded to seconds,
    `$__interval` the panel's min interval (a few days are far below max data points)."""
    seconds = round((span.end_ms - span.start_ms) / 1000)
    return {
        **chosen,
        "__range": f"{seconds}s",
        "__range_s": str(seconds),
        "__range_ms": str(span.end_ms - span.start_ms),
        "__interval": "1d",
        "__interval_ms": str(STEP * 1000),
        "__rate_interval": "1d",
    }


def interpolate(expr: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return variables[match.group(1) or match.group(2)]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


class Grafana:
    """Runs a panel's query as Grafana's Prometheus data source sends it."""

    def __init__(self, url: str, span: TimeRange) -> None:
        self.url, self.span = url, span

    def instant(self, expr: str) -> list[dict[str, Any]]:
        """Evaluated at the end of the range, rounded up to the second."""
        return self._ask("query", query=expr, time=math.ceil(self.span.end_ms / 1000))

    def range(self, expr: str) -> list[dict[str, Any]]:
        """One point per step, start and end aligned to the step in the dashboard's time zone (UTC)."""
        start = math.floor(self.span.start_ms / 1000) // STEP * STEP
        end = math.ceil(self.span.end_ms / 1000) // STEP * STEP
        return self._ask("query_range", query=expr, start=start, end=end, step=STEP)

    def label_values(self, metric_selector: str, label: str) -> list[str]:
        """What `label_values(<selector>, <label>)` lists in a query variable."""
        answer = requests.get(
            f"{self.url}/api/v1/label/{label}/values", params={"match[]": metric_selector}, timeout=10
        ).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def _ask(self, endpoint: str, **params: Any) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=30).json()
        assert answer["status"] == "success", (params["query"], answer)
        return answer["data"]["result"]


@dataclass
class Board:
    history: DemoHistory
    grafana: Grafana
    variables: dict[str, str]

    def frames_of(self, tenant: str, read: Callable[..., pd.DataFrame]) -> pd.DataFrame:
        """The database's figures for the dashboard's time range, through the DataFrame API."""
        span = self.grafana.span
        with frames.tenant_data(self.history.graph.config_path, tenant) as data:
            return read(data, span.first, span.last)


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    workdir = tmp_path_factory.mktemp("dashboard")
    with demo_history(workdir) as history:
        files = [history.openmetrics(tenant) for tenant in TENANT_SEEDS]
        with backfilled_prometheus(workdir, *files) as url:
            # all days but the newest: a panel must not count the day after the range
            span = TimeRange(history.days[0], history.days[-2])
            grafana = Grafana(url, span)
            yield Board(history, grafana, grafana_variables(span, {"tenant": TOPIC_TENANT, "top": str(TOP)}))


def test_the_variables_list_what_the_output_holds(board: Board) -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    tenants = board.grafana.label_values(*label_values_args(variables["tenant"]["query"]["query"], {}))
    assert tenants == sorted(TENANT_SEEDS)
    clusters = board.grafana.label_values(
        *label_values_args(variables["cluster"]["query"]["query"], board.variables)
    )
    topics = board.frames_of(TOPIC_TENANT, frames.topic_rows)
    assert clusters == sorted(set(topics["resource_id"]))


def label_values_args(query: str, variables: Mapping[str, str]) -> tuple[str, str]:
    selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", query).groups()  # type: ignore[union-attr]
    return interpolate(selector, variables), label


def per_day(rows: pd.DataFrame, by: str) -> dict[tuple[str, int], Decimal]:
    """(label value, midnight in epoch seconds) -> exact sum, from a frame with `date` and `amount`."""
    sums = rows.groupby([by, "date"])["amount"].sum()
    return {(key, int(day_start(day).timestamp())): amount for (key, day), amount in sums.items()}


def shown_per_day(board: Board, result: list[dict[str, Any]], by: str) -> dict[tuple[str, int], float]:
    """The points Grafana draws inside the range (the aligned end, the next midnight, lies past it)."""
    end = board.grafana.span.end_ms / 1000
    return {
        (series["metric"].get(by, ""), int(stamp)): float(value)
        for series in result
        for stamp, value in series["values"]
        if stamp <= end
    }


def single(result: list[dict[str, Any]]) -> float:
    [sample] = result
    return float(sample["value"][1])


def assert_close(shown: Mapping[Any, float], expected: Mapping[Any, Decimal]) -> None:
    assert shown.keys() == expected.keys()
    wrong = {
        k: (shown[k], expected[k]) for k in expected if abs(Decimal(repr(shown[k])) - expected[k]) > TOLERANCE
    }
    assert not wrong, wrong


def tenant_figures(board: Board) -> pd.DataFrame:
    return board.frames_of(TOPIC_TENANT, frames.tenant_totals)


def expect_total(board: Board) -> Decimal:
    return tenant_figures(board)["allocated"].sum()


def check_total(board: Board, result: list[dict[str, Any]]) -> None:
    assert abs(Decimal(repr(single(result))) - expect_total(board)) <= TOLERANCE


def check_share(column: str) -> Callable[[Board, list[dict[str, Any]]], None]:
    """The share of the range's cost in a `tenant_totals` column (the demo leaves UNALLOCATED at 0 on most
    days: then the panel must show 0, not "no data")."""

    def check(board: Board, result: list[dict[str, Any]]) -> None:
        figures = tenant_figures(board)
        share = figures[column].sum() / figures["allocated"].sum()
        assert 0 <= share < 1
        assert abs(Decimal(repr(single(result))) - share) <= Decimal("1e-9")

    return check


def check_by_tenant(board: Board, result: list[dict[str, Any]]) -> None:
    expected = {}
    for tenant in TENANT_SEEDS:
        expected.update(per_day(board.frames_of(tenant, frames.chargeback_rows), "tenant_id"))
    assert_close(shown_per_day(board, result, "tenant_id"), expected)


def check_per_day(by: str) -> Callable[[Board, list[dict[str, Any]]], None]:
    def check(board: Board, result: list[dict[str, Any]]) -> None:
        rows = board.frames_of(TOPIC_TENANT, frames.chargeback_rows)
        assert rows[by].nunique() > 1
        assert_close(shown_per_day(board, result, by), per_day(rows, by))

    return check


def check_top_identities(board: Board, result: list[dict[str, Any]]) -> None:
    ranked = board.frames_of(TOPIC_TENANT, frames.identity_totals)
    expected = dict(zip(ranked["identity_id"], ranked["amount"], strict=True))
    shown = {series["metric"]["identity_id"]: float(series["value"][1]) for series in result}
    assert len(shown) == TOP
    assert_close(shown, {identity: expected[identity] for identity in shown})
    assert sorted(shown.values(), reverse=True) == pytest.approx(
        [float(amount) for amount in list(ranked["amount"])[:TOP]], abs=TOLERANCE
    )


def check_provisional_share(board: Board, result: list[dict[str, Any]]) -> None:
    figures = tenant_figures(board)
    provisional = figures[~figures["settled"]]["allocated"].sum()
    assert 0 < provisional < figures["allocated"].sum()
    assert abs(Decimal(repr(single(result))) - provisional / figures["allocated"].sum()) <= Decimal("1e-9")


def check_settled_per_day(board: Board, result: list[dict[str, Any]]) -> None:
    figures = tenant_figures(board).assign(
        settled=lambda df: df["settled"].map({True: "true", False: "false"}),
        amount=lambda df: df["allocated"],
    )
    assert set(figures["settled"]) == {"true", "false"}
    assert_close(shown_per_day(board, result, "settled"), per_day(figures, "settled"))


def check_topics(board: Board, result: list[dict[str, Any]]) -> None:
    topics = board.frames_of(TOPIC_TENANT, frames.topic_rows)
    on_cluster = topics[topics["resource_id"] == board.variables["cluster"]]
    assert on_cluster["topic"].nunique() > 1
    assert_close(shown_per_day(board, result, "topic"), per_day(on_cluster, "topic"))


CHECKS: dict[str, Callable[[Board, list[dict[str, Any]]], None]] = {
    "Cost in range": check_total,
    "Unallocated share": check_share("unallocated"),
    "Unattributed share": check_share("unattributed"),
    "Provisional share": check_provisional_share,
    "Settled vs provisional cost per day": check_settled_per_day,
    "Cost per day by tenant": check_by_tenant,
    "Cost per day by team": check_per_day("team"),
    "Top $top identities in range": check_top_identities,
    "Cost per day by product type": check_per_day("product_type"),
    "Topic cost per day on $cluster": check_topics,
}


def test_every_panel_is_checked() -> None:
    assert {panel["title"] for panel in dashboard()["panels"]} == set(CHECKS)


@pytest.mark.parametrize("title", sorted(CHECKS))
def test_the_panel_shows_the_database_figures(board: Board, title: str) -> None:
    [panel] = [p for p in dashboard()["panels"] if p["title"] == title]
    [target] = panel["targets"]
    variables = dict(board.variables)
    if "$cluster" in target["expr"]:
        variables["cluster"] = board.variables["cluster"] = board.grafana.label_values(
            f'chargeback_topic_amount{{tenant_id="{TOPIC_TENANT}"}}', "resource_id"
        )[0]
    expr = interpolate(target["expr"], variables)
    result = board.grafana.instant(expr) if target["instant"] else board.grafana.range(expr)
    assert result, f"{title}: no data for {expr}"
    CHECKS[title](board, result)
