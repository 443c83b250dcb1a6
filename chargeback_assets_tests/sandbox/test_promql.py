"""The Prometheus stand-in, over HTTP, against sums computed independently from the generated samples."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from chargeback_assets.sandbox import SandboxServer
from chargeback_assets.sandbox.generator import FLINK_CFU, REQUEST_BYTES, RESPONSE_BYTES
from chargeback_assets.sandbox.promql import _format_value, _format_values

DAY = datetime(2026, 6, 14, tzinfo=UTC)
S = int(DAY.timestamp())
E = S + 86_400
STEP = 3600
TEMPLATE = 'sum by ({labels}) (sum_over_time({metric}{{{label}="{value}"}}[{step}s]))'


def _query(
    url: str, metric: str, label: str, value: str, group: str, start: int = S, method: str = "POST"
) -> dict:
    form = {
        "query": TEMPLATE.format(labels=group, metric=metric, label=label, value=value, step=STEP),
        "start": f"{start + STEP - 0.001:.3f}",
        "end": f"{start + 86_400 - 0.001:.3f}",
        "step": str(STEP),
    }
    reply = (
        requests.post(url + "/api/v1/query_range", data=form, timeout=10)
        if method == "POST"
        else requests.get(url + "/api/v1/query_range", params=form, timeout=10)
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _expected(org, metric: str, label: str, value: str, key: str, start_s: int) -> dict[str, float]:
    """Plain-Python sums of the samples with start <= t < start + 1 day, per `key` label."""
    totals: dict[str, float] = defaultdict(float)
    for series in org.usage.series(metric):
        labels = series.label_dict()
        if labels[label] != value:
            continue
        ts, vs = org.usage.samples(series, (start_s - 86_400) * 1000, (start_s + 2 * 86_400) * 1000)
        for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
            if start_s * 1000 <= t < (start_s + 86_400) * 1000:
                totals[labels[key]] += v
    return dict(totals)


def _summed(result: dict, key: str) -> dict[str, float]:
    return {s["metric"][key]: sum(float(v) for _, v in s["values"]) for s in result["data"]["result"]}


@pytest.mark.parametrize("metric", [REQUEST_BYTES, RESPONSE_BYTES])
def test_per_principal_day_sums_are_exact(server, small_org, metric):
    for lkc in small_org.cluster_ids():
        result = _query(server.url, metric, "kafka_id", lkc, "kafka_id, principal_id")
        assert result["status"] == "success"
        assert result["data"]["resultType"] == "matrix"
        expected = _expected(small_org, metric, "kafka_id", lkc, "principal_id", S)
        assert _summed(result, "principal_id") == expected
        keyed_before_day_end = {
            k["spec"]["owner"]["id"]
            for k in small_org.objects["api_keys"]
            if k["spec"]["resource"]["id"] == lkc
            and datetime.fromisoformat(k["metadata"]["created_at"]).timestamp()
            <= E - 60  # first sample on a minute
        }
        assert set(expected) == keyed_before_day_end
        for series in result["data"]["result"]:
            assert set(series["metric"]) == {"kafka_id", "principal_id"}
            times = [t for t, _ in series["values"]]
            assert times[0] >= S + STEP - 0.001 and times[-1] <= E - 0.001
            assert all(isinstance(v, str) for _, v in series["values"])


def test_flink_cfu_per_statement_sums_are_exact(server, small_org):
    for pool in small_org.objects["compute_pools"]:
        result = _query(
            server.url, FLINK_CFU, "compute_pool_id", pool["id"], "compute_pool_id, flink_statement_name"
        )
        expected = _expected(small_org, FLINK_CFU, "compute_pool_id", pool["id"], "flink_statement_name", S)
        assert _summed(result, "flink_statement_name") == expected


def test_a_sample_at_the_day_end_counts_in_the_next_day_only(server, small_org):
    lkc = small_org.cluster_ids()[0]
    series = small_org.usage.matching(REQUEST_BYTES, [("kafka_id", lkc)])[0]
    principal = series.label_dict()["principal_id"]
    ts, vs = small_org.usage.samples(series, E * 1000, E * 1000)
    assert ts.tolist() == [E * 1000] and vs[0] > 0  # a sample sits exactly on midnight
    today = _query(server.url, REQUEST_BYTES, "kafka_id", lkc, "kafka_id, principal_id")
    tomorrow = _query(
        server.url, REQUEST_BYTES, "kafka_id", lkc, "kafka_id, principal_id", start=E, method="GET"
    )
    day_ts, day_vs = small_org.usage.samples(series, S * 1000, E * 1000)
    assert _summed(today, "principal_id")[principal] == float(day_vs[day_ts < E * 1000].sum())
    next_ts, next_vs = small_org.usage.samples(series, E * 1000, (E + 3600) * 1000 - 1)
    first_hour = next(s for s in tomorrow["data"]["result"] if s["metric"]["principal_id"] == principal)[
        "values"
    ][0]
    assert first_hour == [E + STEP - 0.001, str(int(next_vs.sum()))]
    assert next_ts[0] == E * 1000


def test_steps_without_samples_are_omitted(server, small_org):
    """A statement that ended mid-day has points only for the hours before its end."""
    stopped = next(s for s in small_org.objects["flink_statements"] if s["status"]["phase"] != "RUNNING")
    ended = datetime.fromisoformat(stopped["status"]["end_time"])
    start = int(datetime(ended.year, ended.month, ended.day, tzinfo=UTC).timestamp())
    pool = stopped["spec"]["compute_pool_id"]
    result = _query(server.url, FLINK_CFU, "compute_pool_id", pool, "flink_statement_name", start=start)
    mine = [
        s["values"]
        for s in result["data"]["result"]
        if s["metric"]["flink_statement_name"] == stopped["name"]
    ]
    series = small_org.usage.matching(FLINK_CFU, [("flink_statement_name", stopped["name"])])[0]
    ts, _ = small_org.usage.samples(series, start * 1000, (start + 86_400) * 1000 - 1)
    hours = sorted({(t - start * 1000) // 3_600_000 for t in ts.tolist()})
    assert 0 < len(hours) < 24
    assert [t for t, _ in (mine[0] if mine else [])] == [start + (h + 1) * STEP - 0.001 for h in hours]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (2.5e20, "250000000000000000000"),
        (2.0**53, "9007199254740992"),
    ],
)
def test_sample_values_are_written_as_go_formats_them(value, text):
    """strconv.FormatFloat(v, 'f', -1, 64): no exponent at either end of the range."""
    assert _format_value(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_sample_values_take_the_shortest_digits_that_read_back_exactly(value):
    """The fast paths (integers, repr's exponent-free range) agree with numpy's positional formatter (which
    alone writes -0.0 as "-0"; a sum of samples is never negative zero)."""
    assert _format_value(value) == np.format_float_positional(value + 0.0, trim="-")
    assert float(_format_value(value)) == value


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False).map(lambda v: v + 0.0), min_size=1))
def test_a_range_of_values_is_written_as_each_value_alone(values):
    """Whole-number ranges take a vectorized path; it must not change a single character."""
    integral = [float(int(v)) if abs(v) < 2**53 else v for v in values]
    for sample in (values, integral):
        assert _format_values(np.array(sample)) == [_format_value(v) for v in sample]


@pytest.mark.parametrize(
    "form",
    [
        {"query": "up", "start": "1", "end": "2", "step": "1"},
        {
            "query": 'sum by (kafka_id) (sum_over_time(m{kafka_id=~"x"}[60s]))',
            "start": "1",
            "end": "2",
            "step": "1",
        },
        {"query": "sum by (kafka_id) (sum_over_time(m{}[60s]))", "start": "1", "end": "2"},
        {"query": "sum by (kafka_id) (sum_over_time(m[60s]))", "start": "5", "end": "2", "step": "1"},
        {"query": "sum by (kafka_id) (sum_over_time(m[60s]))", "start": "0", "end": "86400", "step": "1"},
    ],
    ids=["other-shape", "regex-matcher", "missing-step", "end-before-start", "too-many-points"],
)
def test_bad_queries_get_bad_data(server, form):
    reply = requests.post(server.url + "/api/v1/query_range", data=form, timeout=10)
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data" and body["error"]


def test_empty_selector_and_unknown_metric_are_valid(server):
    form = {
        "query": "sum by (kafka_id) (sum_over_time(nothing_here{}[3600s]))",
        "start": "0",
        "end": "3600",
        "step": "3600",
    }
    reply = requests.post(server.url + "/api/v1/query_range", data=form, timeout=10)
    assert reply.json() == {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert requests.get(server.url + "/-/ready", timeout=10).status_code == 200


def test_optional_bearer_auth(small_org):
    form = {"query": "sum by (a) (sum_over_time(m{}[60s]))", "start": "0", "end": "60", "step": "60"}
    with SandboxServer(small_org, prometheus_bearer="tok") as guarded:
        assert requests.post(guarded.url + "/api/v1/query_range", data=form, timeout=10).status_code == 401
        headers = {"Authorization": "Bearer tok"}
        assert (
            requests.post(guarded.url + "/api/v1/query_range", data=form, headers=headers).status_code == 200
        )


def test_large_org_day_of_metrics_is_answered_for_every_cluster_and_pool():
    """The usage stage's shape on the large org: every cluster x 2 metrics + every Flink pool, one day, step
    3600. How fast is `make bench` (sandbox_day's usage stage), not this test."""
    from datetime import date

    from chargeback_assets.sandbox import generate_org

    org = generate_org("large", end_date=date(2026, 7, 1))
    with SandboxServer(org) as server, requests.Session() as session:
        queries = [(m, "kafka_id", lkc, "kafka_id, principal_id") for lkc in org.cluster_ids() for m in
                   (REQUEST_BYTES, RESPONSE_BYTES)]  # fmt: skip
        queries += [(FLINK_CFU, "compute_pool_id", p["id"], "compute_pool_id, flink_statement_name")
                    for p in org.objects["compute_pools"]]  # fmt: skip
        series = 0
        for metric, label, value, group in queries:
            form = {
                "query": TEMPLATE.format(labels=group, metric=metric, label=label, value=value, step=STEP),
                "start": f"{S + STEP - 0.001:.3f}",
                "end": f"{E - 0.001:.3f}",
                "step": str(STEP),
            }
            series += len(
                session.post(server.url + "/api/v1/query_range", data=form, timeout=30).json()["data"][
                    "result"
                ]
            )
    assert series > 3000
