from __future__ import annotations

import json

import pytest
import requests

from chargeback_assets.sandbox import SandboxServer, dump_snapshot, generate_org, load_snapshot
from chargeback_assets.sandbox.generator import REQUEST_BYTES
from chargeback_assets.sandbox.snapshot import FORMAT

from .conftest import AUTH
from .test_promql import S, _query


@pytest.fixture(scope="module")
def short_org():
    from datetime import date

    return generate_org("small", seed=3, end_date=date(2026, 6, 16), days=3)


def test_snapshot_round_trips_exactly(tmp_path, short_org):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    dump_snapshot(short_org, first)
    loaded = load_snapshot(first)
    dump_snapshot(loaded, second)
    assert first.read_text() == second.read_text()
    assert loaded.organization_id == short_org.organization_id
    assert loaded.objects == short_org.objects
    assert loaded.identity_pools == short_org.identity_pools
    assert loaded.connectors == short_org.connectors
    assert loaded.costs == short_org.costs
    assert [s.key for s in loaded.usage.all_series()] == [s.key for s in short_org.usage.all_series()]
    for series in short_org.usage.all_series():
        lo, hi = short_org.usage.extent_ms(series)
        want, got = short_org.usage.samples(series, lo, hi), loaded.usage.samples(series, lo, hi)
        assert want[0].tolist() == got[0].tolist()
        assert want[1].tolist() == got[1].tolist()
    data = json.loads(first.read_text())
    assert data["format"] == FORMAT
    assert data["metrics"][0].keys() == {"name", "labels", "start", "step_seconds", "values"}


def test_a_snapshot_serves_the_same_answers(tmp_path, short_org):
    path = tmp_path / "org.json"
    dump_snapshot(short_org, path)
    lkc = short_org.cluster_ids()[0]
    answers = []
    for org in (short_org, load_snapshot(path)):
        with SandboxServer(org) as server:
            costs = requests.get(
                server.url + "/billing/v1/costs?start_date=2026-06-13&end_date=2026-06-16",
                auth=AUTH,
                timeout=10,
            ).json()
            metrics = _query(server.url, REQUEST_BYTES, "kafka_id", lkc, "kafka_id, principal_id", start=S)
            answers.append((costs["data"], metrics))
    assert answers[0] == answers[1]
    assert answers[0][1]["data"]["result"]


def test_malformed_snapshots_are_refused_with_the_reason(tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a sandbox snapshot"):
        load_snapshot(wrong)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"format": FORMAT, "organization_id": "x", "objects": {}}))
    with pytest.raises(ValueError, match="lacks"):
        load_snapshot(partial)
