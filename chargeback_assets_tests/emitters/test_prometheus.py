import subprocess
from datetime import date
from pathlib import Path

import pytest
import requests

from chargeback_assets.emitters.base import EmitterError, Labels
from chargeback_assets.emitters.prometheus import PrometheusEmitter
from chargeback_assets.engine.models import CostType
from chargeback_assets_tests.emitters.samples import (
    HOSTILE,
    HOSTILE_AS_READ,
    HOSTILE_LABEL,
    emit_row,
    period_facts,
)
from chargeback_assets_tests.real_prometheus import backfilled_prometheus, require_prometheus

DAY1, DAY2 = date(2026, 3, 14), date(2026, 3, 15)
T1, T2 = 1773446400, 1773532800  # 00:00 UTC of DAY1, DAY2 in seconds

AMOUNT_SERIES = (
    'chargeback_amount{{tenant_id="t1",ecosystem="confluent_cloud",identity_id="{identity}",resource_id="lkc-1",'
    'product_type="KAFKA_NUM_CKU",cost_type="usage",allocation_method="usage_ratio",env_id="env-1",'
    'currency="USD",settled="true"}}'
)


def amount_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("chargeback_amount{")]


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
    assert amount_lines(text) == [
        AMOUNT_SERIES.format(identity="sa-1") + f" 1.7500 {T1}",  # two categories of one label set: summed
        AMOUNT_SERIES.format(identity="sa-2") + f" 3.0001 {T2}",
    ]
    assert (
        'chargeback_identity_info{tenant_id="t1",ecosystem="confluent_cloud",identity_id="sa-2",'
        f'identity_name="SA-2",identity_type="service_account"}} 1 {T2}'
    ) in text.splitlines()


def test_re_emitting_a_date_replaces_its_samples_and_keeps_the_others(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000")], period_facts(DAY1))
    emitter.emit("t1", DAY2, [emit_row(DAY2, "sa-1", "2.0000")], period_facts(DAY2))
    emitter.publish("t1")
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-9", "9.0000")], period_facts(DAY1))
    emitter.publish("t1")
    assert amount_lines((tmp_path / "t1.om").read_text()) == [
        AMOUNT_SERIES.format(identity="sa-9") + f" 9.0000 {T1}",
        AMOUNT_SERIES.format(identity="sa-1") + f" 2.0000 {T2}",
    ]
    assert sorted(p.name for p in (tmp_path / "t1.om.d").iterdir()) == ["2026-03-14", "2026-03-15"]


def test_tags_and_teams_become_info_and_team_series(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    rows = [
        emit_row(DAY1, "sa-1", "1.0000", tags={"team": "pay", "cost-center": "42"}),
        emit_row(DAY1, "sa-2", "2.0000", cost_type=CostType.SHARED),
    ]
    emitter.emit("t1", DAY1, rows, period_facts(DAY1))
    emitter.publish("t1")
    lines = (tmp_path / "t1.om").read_text().splitlines()
    team = (
        'chargeback_team_amount{{tenant_id="t1",ecosystem="confluent_cloud",team="{}",cost_type="{}",'
        'currency="USD",settled="true"}}'
    )
    assert team.format("pay", "usage") + f" 1.0000 {T1}" in lines
    assert team.format("UNTAGGED", "shared") + f" 2.0000 {T1}" in lines
    assert (
        'chargeback_tags_info{tenant_id="t1",ecosystem="confluent_cloud",identity_id="sa-1",resource_id="lkc-1",'
        f'tag_cost_center="42",tag_team="pay"}} 1 {T1}'
    ) in lines


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
    scope = 'tenant_id="t1",ecosystem="confluent_cloud",identity_id="sa-1"'
    assert [line for line in lines if line.startswith(f"chargeback_identity_info{{{scope},")] == [
        f'chargeback_identity_info{{{scope},identity_name="{HOSTILE_LABEL}",identity_type="service_account"}}'
        f" 1 {timestamp}"
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


def test_promtool_accepts_the_file(tmp_path: Path) -> None:
    require_prometheus()
    emitter = PrometheusEmitter(tmp_path / "out")
    for day in (DAY1, DAY2):
        emitter.emit("t1", day, [emit_row(day, "sa-1", "1.0000", tags={"team": "pay"})], period_facts(day))
    emitter.publish("t1")
    blocks = subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(tmp_path / "out" / "t1.om"),
            str(tmp_path / "db"),
        ],
        capture_output=True,
        text=True,
    )
    assert blocks.returncode == 0, blocks.stderr
    listing = subprocess.run(
        ["promtool", "tsdb", "list", str(tmp_path / "db")], capture_output=True, text=True
    )
    assert str(T1 * 1000) in listing.stdout


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
    lines = (tmp_path / "t1.om").read_text().splitlines()
    scope = 'tenant_id="t1",ecosystem="confluent_cloud",identity_id="sa-1"'
    identity = (
        f'chargeback_identity_info{{{scope},identity_name="Pay \\"app\\"",identity_type="service_account"}}'
    )
    assert [
        line for line in lines if line.startswith(("chargeback_identity_info{", "chargeback_tags_info{"))
    ] == [
        f"{identity} 1 {T1}",
        f"{identity} 1 {T2}",
        f'chargeback_tags_info{{{scope},resource_id="lkc-1",tag_cost_center="4\\\\2"}} 1 {T1}',
        f'chargeback_tags_info{{{scope},resource_id="lkc-2",tag_cost_center="4\\\\2"}} 1 {T1}',
        f'chargeback_tags_info{{{scope},resource_id="lkc-1",tag_cost_center="4\\\\2"}} 1 {T2}',
        f'chargeback_tags_info{{{scope},resource_id="lkc-2",tag_cost_center="4\\\\2"}} 1 {T2}',
    ]
    assert amount_lines("\n".join(lines)) == [
        AMOUNT_SERIES.format(identity="sa-1") + f" 2.0000 {T1}",  # the row given twice counts twice
        AMOUNT_SERIES.format(identity="sa-1").replace("lkc-1", "lkc-2") + f" 0.5000 {T1}",
        AMOUNT_SERIES.format(identity="sa-1") + f" 4.0000 {T2}",
        AMOUNT_SERIES.format(identity="sa-1").replace("lkc-1", "lkc-2") + f" 0.5000 {T2}",
    ]


def test_cost_series_carry_the_currency_and_whether_the_day_is_settled(tmp_path: Path) -> None:
    emitter = PrometheusEmitter(tmp_path)
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000", tags={"team": "pay"})], period_facts(DAY1))
    provisional = period_facts(DAY2, currency="EUR", settled=False)
    emitter.emit("t1", DAY2, [emit_row(DAY2, "sa-1", "2.0000", tags={"team": "pay"})], provisional)
    emitter.publish("t1")
    lines = (tmp_path / "t1.om").read_text().splitlines()
    cost_lines = [
        line for line in lines if line.startswith(("chargeback_amount{", "chargeback_team_amount{"))
    ]
    assert [[*line.split("} ")[0].rsplit(",", 2)[1:], line.rsplit(" ", 1)[1]] for line in cost_lines] == [
        ['currency="USD"', 'settled="true"', str(T1)],
        ['currency="EUR"', 'settled="false"', str(T2)],
        ['currency="USD"', 'settled="true"', str(T1)],
        ['currency="EUR"', 'settled="false"', str(T2)],
    ]
    info = [line for line in lines if line.startswith(("chargeback_identity_info{", "chargeback_tags_info{"))]
    assert info and not any("settled=" in line or "currency=" in line for line in info)  # not cost series
