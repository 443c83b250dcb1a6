import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from chargeback_assets.emitters.base import EmitRow, EmitterError, Labels
from chargeback_assets.emitters.prometheus import PrometheusEmitter
from chargeback_assets.engine.models import CostType
from chargeback_assets_tests.emitters.samples import (
    HOSTILE,
    HOSTILE_AS_READ,
    HOSTILE_LABEL,
    emit_row,
    emit_varied,
    period_facts,
)
from chargeback_assets_tests.real_prometheus import backfilled_prometheus, require_prometheus

DAY1, DAY2 = date(2026, 3, 14), date(2026, 3, 15)
T1, T2 = 1773446400, 1773532800  # 00:00 UTC of DAY1, DAY2 in seconds
VARIED = Path(__file__).with_name("data") / "varied.om"
"""What the hand-written renderer (before prometheus_client) wrote for `emit_varied`."""

Series = tuple[str, tuple[tuple[str, str], ...], float, float | None]


def samples(path: Path) -> list[Series]:
    """(metric, sorted labels, value, timestamp in seconds) of every sample, as an OpenMetrics reader parses
    it, in file order. Line by line: a series' samples of several days are not contiguous in the file, which
    promtool and Prometheus accept but the strict parser of `prometheus_client` refuses."""
    found = []
    for line in path.read_bytes().decode("utf-8").split("\n"):
        if line and not line.startswith("#"):
            metric = line.split("{", 1)[0]
            [family] = text_string_to_metric_families(f"# TYPE {metric} gauge\n{line}\n# EOF\n")
            [s] = family.samples
            stamp = None if s.timestamp is None else float(s.timestamp.sec)
            found.append((s.name, tuple(sorted(s.labels.items())), s.value, stamp))
    return found


def amounts(path: Path) -> list[tuple[str, float, float | None]]:
    """(identity_id, value, timestamp) of the chargeback_amount samples, in file order."""
    return [
        (dict(labels)["identity_id"], value, timestamp)
        for metric, labels, value, timestamp in samples(path)
        if metric == "chargeback_amount"
    ]


AMOUNT_LABELS = {
    "tenant_id": "t1",
    "ecosystem": "confluent_cloud",
    "resource_id": "lkc-1",
    "product_type": "KAFKA_NUM_CKU",
    "cost_type": "usage",
    "allocation_method": "usage_ratio",
    "env_id": "env-1",
    "currency": "USD",
    "settled": "true",
}


def test_the_file_holds_the_same_samples_as_the_hand_written_renderer_wrote(tmp_path: Path) -> None:
    emit_varied(PrometheusEmitter(tmp_path))
    assert sorted(samples(tmp_path / "t1.om"), key=repr) == sorted(samples(VARIED), key=repr)
    assert len(samples(VARIED)) == 32


def test_every_emitted_date_is_in_the_file_with_midnight_timestamps_in_seconds(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit(
        "t1",
        DAY1,
        [emit_row(DAY1, "sa-1", "1.5000"), emit_row(DAY1, "sa-1", "0.2500", product_category="X")],
        period_facts(DAY1),
    )
    emitter.emit("t1", DAY2, [emit_row(DAY2, "sa-2", "3.0001")], period_facts(DAY2))
    assert emitter.publish("t1") == [str(tmp_path / "t1.om")]

    text = (tmp_path / "t1.om").read_text()
    assert text.endswith("# EOF\n")
    assert text.count("# TYPE chargeback_amount gauge") == 1
    assert [s for s in samples(tmp_path / "t1.om") if s[0] == "chargeback_amount"] == [
        ("chargeback_amount", tuple(sorted({**AMOUNT_LABELS, "identity_id": "sa-1"}.items())), 1.75, T1),
        ("chargeback_amount", tuple(sorted({**AMOUNT_LABELS, "identity_id": "sa-2"}.items())), 3.0001, T2),
    ]  # two categories of one label set: summed
    identity = {"tenant_id": "t1", "ecosystem": "confluent_cloud", "identity_id": "sa-2"}
    info = {**identity, "identity_name": "SA-2", "identity_type": "service_account"}
    assert ("chargeback_identity_info", tuple(sorted(info.items())), 1.0, T2) in samples(tmp_path / "t1.om")


def test_re_emitting_a_date_replaces_its_samples_and_keeps_the_others(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000")], period_facts(DAY1))
    emitter.emit("t1", DAY2, [emit_row(DAY2, "sa-1", "2.0000")], period_facts(DAY2))
    emitter.publish("t1")
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-9", "9.0000")], period_facts(DAY1))
    emitter.publish("t1")
    assert amounts(tmp_path / "t1.om") == [("sa-9", 9.0, T1), ("sa-1", 2.0, T2)]
    assert sorted(p.name for p in (tmp_path / "t1.om.d").iterdir()) == ["2026-03-14", "2026-03-15"]


def test_tags_and_teams_become_info_and_team_series(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    rows = [
        emit_row(DAY1, "sa-1", "1.0000", tags={"team": "pay", "cost-center": "42"}),
        emit_row(DAY1, "sa-2", "2.0000", cost_type=CostType.SHARED),
    ]
    emitter.emit("t1", DAY1, rows, period_facts(DAY1))
    emitter.publish("t1")
    found = samples(tmp_path / "t1.om")
    scope = {"tenant_id": "t1", "ecosystem": "confluent_cloud"}
    for team, cost_type, value in (("pay", "usage", 1.0), ("UNTAGGED", "shared", 2.0)):
        labels = {**scope, "team": team, "cost_type": cost_type, "currency": "USD", "settled": "true"}
        assert ("chargeback_team_amount", tuple(sorted(labels.items())), value, T1) in found
    tags = {
        **scope,
        "identity_id": "sa-1",
        "resource_id": "lkc-1",
        "tag_cost_center": "42",
        "tag_team": "pay",
    }
    assert ("chargeback_tags_info", tuple(sorted(tags.items())), 1.0, T1) in found


def test_tag_keys_that_collide_as_label_names_fail_the_emission(tmp_path: Path) -> None:
    row = emit_row(DAY1, "sa-1", "1.0000", tags={"cost.center": "1", "cost-center": "2"})
    with pytest.raises(EmitterError, match="tag_cost_center"):
        PrometheusEmitter(tmp_path).emit("t1", DAY1, [row], period_facts(DAY1))


def test_label_values_are_escaped(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit(
        "t1",
        DAY1,
        [emit_row(DAY1, "sa-1", "1.0000", identity_name='a "quoted"\\ name\nx')],
        period_facts(DAY1),
    )
    emitter.publish("t1")
    assert 'identity_name="a \\"quoted\\"\\\\ name\\nx"' in (tmp_path / "t1.om").read_text()


def test_control_characters_in_label_values_are_replaced_and_every_sample_stays_on_its_line(
    tmp_path: Path,
) -> None:
    emitter = PrometheusEmitter(tmp_path)
    for day in (DAY1, DAY2):
        rows = [
            emit_row(day, "sa-1", "1.0000", identity_name=HOSTILE, tags={"team": HOSTILE}),
            emit_row(day, "sa-2", "2.0000"),
        ]
        emitter.emit("t1", day, rows, period_facts(day))
    emitter.publish("t1")
    raw = (tmp_path / "t1.om").read_bytes()
    assert not set(raw) & {*range(0x00, 0x0A), *range(0x0B, 0x20), 0x7F}  # no control byte but LF
    lines = raw.decode("utf-8").split("\n")
    scope = 'ecosystem="confluent_cloud",identity_id="sa-1"'
    assert [line for line in lines if line.startswith(f"chargeback_identity_info{{{scope},")] == [
        f'chargeback_identity_info{{{scope},identity_name="{HOSTILE_LABEL}",identity_type="service_account",'
        f'tenant_id="t1"}} 1.0 {timestamp}'
        for timestamp in (T1, T2)
    ]
    assert sum(line.startswith("chargeback_amount{") for line in lines) == 4
    assert sum(f'team="{HOSTILE_LABEL}"' in line for line in lines) == 4  # team series and tag labels


def test_prometheus_reads_a_hostile_label_value_back_as_written(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path / "out")
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", identity_name=HOSTILE)], period_facts(DAY1))
    emitter.publish("t1")
    with backfilled_prometheus(tmp_path, tmp_path / "out" / "t1.om") as url:
        answer = requests.get(
            f"{url}/api/v1/query",
            params={"query": 'chargeback_identity_info{identity_id="sa-1"}', "time": T1},
            timeout=10,
        ).json()
    [series] = answer["data"]["result"]
    assert series["metric"]["identity_name"] == HOSTILE_AS_READ


def test_promtool_accepts_the_file_and_finds_nothing_to_lint(tmp_path: Path) -> None:
    require_prometheus()
    emit_varied(PrometheusEmitter(tmp_path / "out"))
    published = tmp_path / "out" / "t1.om"
    blocks = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(published), str(tmp_path / "db")],
        capture_output=True,
        text=True,
    )
    assert blocks.returncode == 0, blocks.stderr
    listing = subprocess.run(
        ["promtool", "tsdb", "list", str(tmp_path / "db")], capture_output=True, text=True
    )
    assert str(T1 * 1000) in listing.stdout
    lint = subprocess.run(["promtool", "check", "metrics"], input=published.read_bytes(), capture_output=True)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, b"", b"")


def test_an_unwritable_output_dir_is_an_emitter_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a directory")
    with pytest.raises(EmitterError, match="cannot write"):
        PrometheusEmitter(tmp_path / "out").emit(
            "t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000")], period_facts(DAY1)
        )


def test_rows_sharing_labels_across_periods_give_every_period_its_own_exact_lines(tmp_path: Path) -> None:
    shared = Labels(identity_name='Pay "app"', identity_type="service_account", tags={"cost.center": "4\\2"})
    emitter = PrometheusEmitter(tmp_path)
    for day, amount in ((DAY1, "1.0000"), (DAY2, "2.0000")):
        (row, _), (other, _) = (
            emit_row(day, "sa-1", amount),
            emit_row(day, "sa-1", "0.5000", resource_id="lkc-2"),
        )
        emitter.emit("t1", day, [(row, shared), (other, shared), (row, shared)], period_facts(day))
    emitter.publish("t1")
    found = samples(tmp_path / "t1.om")
    scope = {"tenant_id": "t1", "ecosystem": "confluent_cloud", "identity_id": "sa-1"}
    identity = {**scope, "identity_name": 'Pay "app"', "identity_type": "service_account"}
    assert [
        (metric, dict(labels), timestamp) for metric, labels, _, timestamp in found if "info" in metric
    ] == [
        ("chargeback_identity_info", identity, T1),
        ("chargeback_identity_info", identity, T2),
        ("chargeback_tags_info", {**scope, "resource_id": "lkc-1", "tag_cost_center": "4\\2"}, T1),
        ("chargeback_tags_info", {**scope, "resource_id": "lkc-2", "tag_cost_center": "4\\2"}, T1),
        ("chargeback_tags_info", {**scope, "resource_id": "lkc-1", "tag_cost_center": "4\\2"}, T2),
        ("chargeback_tags_info", {**scope, "resource_id": "lkc-2", "tag_cost_center": "4\\2"}, T2),
    ]
    assert [
        (dict(labels)["resource_id"], value, timestamp)
        for metric, labels, value, timestamp in found
        if metric == "chargeback_amount"
    ] == [
        ("lkc-1", 2.0, T1),  # the row given twice counts twice
        ("lkc-2", 0.5, T1),
        ("lkc-1", 4.0, T2),
        ("lkc-2", 0.5, T2),
    ]


def test_re_emitting_an_unchanged_period_keeps_its_fragment_and_any_change_renders_it_again(
    tmp_path: Path,
) -> None:
    emitter = PrometheusEmitter(tmp_path)
    fragment = tmp_path / "t1.om.d" / DAY1.isoformat() / "chargeback_identity_info"
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", identity_name="Payments")], period_facts(DAY1))
    rendered = fragment.stat().st_ino
    PrometheusEmitter(tmp_path).emit(
        "t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", identity_name="Payments")], period_facts(DAY1)
    )
    assert fragment.stat().st_ino == rendered  # the same samples: left as it was

    emitter.emit(
        "t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", identity_name="Payments EU")], period_facts(DAY1)
    )
    emitter.publish("t1")
    assert fragment.stat().st_ino != rendered
    assert [
        dict(labels)["identity_name"]
        for metric, labels, _, _ in samples(tmp_path / "t1.om")
        if "info" in metric
    ] == ["Payments EU"]


def test_an_unchanged_period_is_recognized_whichever_equal_strings_are_one_object(tmp_path: Path) -> None:
    """A later run reads the same rows into new objects: the digest must follow the values only (a pickle's
    bytes also say which equal strings were shared)."""

    def rows(identity: Callable[[], str]) -> list[EmitRow]:
        return [
            emit_row(DAY1, identity(), "1.0000", product_type=product)
            for product in ("KAFKA_NUM_CKU", "KAFKA_STORAGE")
        ]

    fragment = tmp_path / "t1.om.d" / DAY1.isoformat() / "chargeback_amount"
    shared = "sa-1"
    PrometheusEmitter(tmp_path).emit("t1", DAY1, rows(lambda: shared), period_facts(DAY1))
    rendered = fragment.stat().st_ino
    PrometheusEmitter(tmp_path).emit("t1", DAY1, rows(lambda: "".join(["sa", "-1"])), period_facts(DAY1))
    assert fragment.stat().st_ino == rendered


def test_cost_series_carry_the_currency_and_whether_the_day_is_settled(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", tags={"team": "pay"})], period_facts(DAY1))
    provisional = period_facts(DAY2, currency="EUR", settled=False)
    emitter.emit("t1", DAY2, [emit_row(DAY2, "sa-1", "2.0000", tags={"team": "pay"})], provisional)
    emitter.publish("t1")
    found = samples(tmp_path / "t1.om")
    cost = [
        (metric, dict(labels)["currency"], dict(labels)["settled"], timestamp)
        for metric, labels, _, timestamp in found
        if metric.endswith("_amount")
    ]
    assert cost == [
        ("chargeback_amount", "USD", "true", T1),
        ("chargeback_amount", "EUR", "false", T2),
        ("chargeback_team_amount", "USD", "true", T1),
        ("chargeback_team_amount", "EUR", "false", T2),
    ]
    info = [dict(labels) for metric, labels, _, _ in found if metric.endswith("_info")]
    assert info and not any("settled" in labels or "currency" in labels for labels in info)  # not cost series
