from __future__ import annotations

import base64
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chargeback_assets.ecosystems.confluent_cloud.queries import (
    ALL_QUERIES,
    BYTES_IN,
    BYTES_OUT,
    FLINK_CFU_PRIMARY,
)
from chargeback_assets.ecosystems.prometheus import (
    EXACT_DIGITS,
    MetricsQueryError,
    PrometheusMetricsSource,
    daily_usage,
    exact_sums,
    render_query,
    summarize_usage,
)
from chargeback_assets.ecosystems.prometheus_settings import PrometheusSettings
from chargeback_assets.engine.models import UTC, MetricRow, UsageRecord, Window
from chargeback_assets.validation import Secret
from chargeback_assets_tests.ecosystems.http_fake import FakeHttpServer, FakeTime, Reply
from chargeback_assets_tests.real_prometheus import Sample, running_prometheus

DAY = date(2024, 1, 15)
DAY_START = datetime(2024, 1, 15, tzinfo=UTC)
EPOCH = int(DAY_START.timestamp())
MINUTE = 60
REQUEST_BYTES = "confluent_kafka_server_request_bytes"
QUERY_PATH = "/api/v1/query_range"


def _kafka(timestamp: int, value: float, principal: str, cluster: str = "lkc-1") -> Sample:
    labels = {"kafka_id": cluster, "principal_id": principal, "type": "Produce"}
    return Sample(REQUEST_BYTES, float(timestamp), value, labels)


def _history() -> list[Sample]:
    """One day of 1-minute delta samples on lkc-1, the first hour of the next day, and noise on lkc-2.

    sa-steady writes 10 bytes every minute (14400 a day); sa-bursty writes 1000 bytes a minute during
    13:00-13:59 only (60000) and 0 otherwise; a sample of 777 sits exactly on the next midnight and belongs to
    the next day.
    """
    samples = []
    for minute in range(24 * 60):
        t = EPOCH + minute * MINUTE
        samples.append(_kafka(t, 10, "sa-steady"))
        samples.append(_kafka(t, 1000 if 13 * 60 <= minute < 14 * 60 else 0, "sa-bursty"))
        samples.append(_kafka(t, 5, "sa-steady", cluster="lkc-2"))
    next_day = EPOCH + 86400
    samples.append(_kafka(next_day, 777, "sa-steady"))
    samples.extend(_kafka(next_day + m * MINUTE, 10, "sa-steady") for m in range(1, 60))
    return samples


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), _history()) as url:
        yield url


@pytest.fixture
def source(prometheus):
    metrics = PrometheusMetricsSource(PrometheusSettings(url=prometheus), "acme")
    yield metrics
    metrics.close()


def _usage(records: list[UsageRecord]) -> dict[str, Decimal]:
    return {r.subject: r.value for r in records}


def test_a_day_of_usage_from_real_prometheus(source):
    rows = source.query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    usage = summarize_usage(rows, BYTES_IN, "lkc-1")
    assert _usage(usage) == {"sa-bursty": Decimal(60000), "sa-steady": Decimal(14400)}
    assert all(r.resource_id == "lkc-1" and r.metric_key == "bytes_in" for r in usage)

    steady = sorted((r for r in rows if r.labels["principal_id"] == "sa-steady"), key=lambda r: r.timestamp)
    assert [r.timestamp for r in steady] == [DAY_START + timedelta(hours=h) for h in range(24)]
    assert {r.value for r in steady} == {600.0}
    assert all(set(r.labels) == {"kafka_id", "principal_id"} for r in rows)
    burst = [r for r in rows if r.labels["principal_id"] == "sa-bursty" and r.value > 0]
    assert [(r.timestamp, r.value) for r in burst] == [(DAY_START + timedelta(hours=13), 60000.0)]


def test_the_midnight_sample_is_counted_in_the_next_day_only(source):
    next_day = summarize_usage(
        source.query_range(BYTES_IN, Window.for_day(DAY + timedelta(days=1)), 3600, "lkc-1"),
        BYTES_IN,
        "lkc-1",
    )
    assert _usage(next_day) == {"sa-steady": Decimal(777 + 59 * 10)}


def test_a_whole_day_step_gives_the_same_sums(source):
    rows = source.query_range(BYTES_IN, Window.for_day(DAY), 86400, "lkc-1")
    assert len(rows) == 2 and {r.timestamp for r in rows} == {DAY_START}
    assert _usage(summarize_usage(rows, BYTES_IN, "lkc-1")) == {
        "sa-bursty": Decimal(60000),
        "sa-steady": Decimal(14400),
    }


def test_without_a_resource_filter_every_cluster_comes_back(source):
    rows = source.query_range(BYTES_IN, Window.for_day(DAY), 86400, None)
    assert {(r.labels["kafka_id"], r.labels["principal_id"], r.value) for r in rows} == {
        ("lkc-1", "sa-bursty", 60000.0),
        ("lkc-1", "sa-steady", 14400.0),
        ("lkc-2", "sa-steady", 7200.0),
    }
    assert _usage(summarize_usage(rows, BYTES_IN, "lkc-2")) == {"sa-steady": Decimal(7200)}


def _summarized_by_day(source, query, window, step, resource_id):
    """What `usage_by_day` must equal: `summarize_usage` of each day's `query_range` rows."""
    by_day: dict[date, list[MetricRow]] = {}
    for row in source.query_range(query, window, step, resource_id):
        by_day.setdefault(row.timestamp.date(), []).append(row)
    return {day: summarize_usage(rows, query, resource_id) for day, rows in sorted(by_day.items())}


def test_usage_by_day_from_real_prometheus_is_each_days_summarized_rows(source):
    two_days = Window(DAY_START, DAY_START + timedelta(days=2))
    usage = source.usage_by_day(BYTES_IN, two_days, 3600, "lkc-1")
    assert usage == _summarized_by_day(source, BYTES_IN, two_days, 3600, "lkc-1")
    assert {day: _usage(records) for day, records in usage.items()} == {
        DAY: {"sa-bursty": Decimal(60000), "sa-steady": Decimal(14400)},
        DAY + timedelta(days=1): {"sa-steady": Decimal(777 + 59 * 10)},
    }
    assert source.usage_by_day(BYTES_OUT, two_days, 3600, "lkc-1") == {}


def test_a_metric_with_no_data_is_an_empty_result_not_an_error(source):
    assert source.query_range(BYTES_OUT, Window.for_day(DAY), 3600, "lkc-1") == []


def test_a_bad_query_is_a_typed_error_from_real_prometheus(source):
    broken = BYTES_IN.__class__(key="broken", query_expression="sum by (", label_keys=())
    with pytest.raises(MetricsQueryError) as caught:
        source.query_range(broken, Window.for_day(DAY), 3600, None)
    assert caught.value.status == 400 and "bad_data" in str(caught.value) and "'broken'" in str(caught.value)


def test_queries_render_as_the_protocol_says():
    assert render_query(BYTES_IN, 3600, "lkc-abc") == (
        "sum by (kafka_id, principal_id) "
        '(sum_over_time(confluent_kafka_server_request_bytes{kafka_id="lkc-abc"}[3600s]))'
    )
    assert render_query(FLINK_CFU_PRIMARY, 60, None) == (
        "sum by (compute_pool_id, flink_statement_name) (sum_over_time(confluent_flink_num_cfu[60s]))"
    )
    assert render_query(BYTES_OUT, 3600, 'a"b') == (
        "sum by (kafka_id, principal_id) "
        '(sum_over_time(confluent_kafka_server_response_bytes{kafka_id="a\\"b"}[3600s]))'
    )
    assert [q.key for q in ALL_QUERIES] == [
        "bytes_in",
        "bytes_out",
        "flink_cfu_primary",
        "flink_cfu_fallback",
    ]
    assert FLINK_CFU_PRIMARY.label_keys == ("compute_pool_id", "flink_statement_name")
    assert (FLINK_CFU_PRIMARY.resource_label, FLINK_CFU_PRIMARY.subject_label) == (
        "compute_pool_id",
        "flink_statement_name",
    )


# -- against a scripted HTTP server --

MATRIX = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"kafka_id": "lkc-1", "principal_id": "sa-1", "type": "Produce"},
                "values": [
                    [EPOCH + 3600 - 0.001, "1.5"],
                    [EPOCH + 7200 - 0.001, "NaN"],
                    [EPOCH + 86400 - 0.001, "2"],
                ],
            }
        ],
    },
}


@pytest.fixture
def server():
    fake = FakeHttpServer()
    yield fake
    fake.stop()


@pytest.fixture
def fake_time():
    return FakeTime()


def _source(server, fake_time, **settings):
    return PrometheusMetricsSource(
        PrometheusSettings(url=server.url, **settings), "acme", budget=fake_time.budget()
    )


def test_the_form_is_half_open(server, fake_time):
    server.route(QUERY_PATH, Reply(body=MATRIX))
    rows = _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    [hit] = server.hits(QUERY_PATH)
    assert hit.method == "POST"
    assert hit.query == {
        "query": render_query(BYTES_IN, 3600, "lkc-1"),
        "start": f"{EPOCH + 3600 - 0.001:.3f}",
        "end": f"{EPOCH + 86400 - 0.001:.3f}",
        "step": "3600",
    }
    assert hit.query["start"] == "1705280399.999" and hit.query["end"] == "1705363199.999"
    assert [(r.timestamp, r.value) for r in rows] == [
        (DAY_START, 1.5),
        (DAY_START + timedelta(hours=23), 2.0),
    ]
    assert rows[0].labels == {"kafka_id": "lkc-1", "principal_id": "sa-1"}


HOSTILE = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"kafka_id": "lkc-1", "principal_id": "sa-1"},
                "values": [
                    [EPOCH + 3600 - 0.001, "0.1"],
                    [EPOCH + 7200 - 0.001, "0.2"],
                    [EPOCH + 10800 - 0.001, "40"],
                    [EPOCH + 14400 - 0.001, "NaN"],
                    [EPOCH + 18000 - 0.001, "+Inf"],
                    [EPOCH + 21600 - 0.001, "not a number"],
                    [EPOCH + 25200 - 0.001],
                    [EPOCH + 86400 - 0.001, "0"],
                    [EPOCH + 90000 - 0.001, "-3"],
                    [EPOCH + 93600 - 0.001, "1e+17"],
                    [EPOCH + 97200 - 0.001, "2.5e-05"],
                ],
            },
            {
                "metric": {"kafka_id": "lkc-1", "principal_id": "sa-2"},
                "values": [[EPOCH + 3600 - 0.001, "7"]],
            },
            {
                "metric": {"kafka_id": "lkc-2", "principal_id": "sa-3"},
                "values": [[EPOCH + 3600 - 0.001, "5"]],
            },
            {"metric": {"kafka_id": "lkc-1"}, "values": [[EPOCH + 3600 - 0.001, "9"]]},
        ],
    },
}


def test_usage_by_day_skips_what_summarize_skips_and_sums_to_the_digit(server, fake_time):
    server.route(QUERY_PATH, Reply(body=HOSTILE))
    metrics = _source(server, fake_time)
    two_days = Window(DAY_START, DAY_START + timedelta(days=2))
    usage = metrics.usage_by_day(BYTES_IN, two_days, 3600, "lkc-1")
    assert usage == _summarized_by_day(metrics, BYTES_IN, two_days, 3600, "lkc-1")
    assert {day: [(r.subject, str(r.value)) for r in records] for day, records in usage.items()} == {
        DAY: [("sa-1", "40.3"), ("sa-2", "7.0")],
        DAY + timedelta(days=1): [("sa-1", "100000000000000000.000025")],
    }


SAMPLE_TEXTS = st.one_of(
    st.integers(0, 10**20).map(str),  # byte counts, past 15 digits and 2**53 too
    st.integers(0, 999).map(lambda n: f"000{n}"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "+Inf", "-Inf", "-3", "1e+17", "2.5e-05", "0.0", "", "x", "1_000", " 7"]),
    st.sampled_from(["١٢", "²"]),  # decimal digits int() reads, and a digit it does not
)
HOURS = st.integers(1, 48)
POINTS = st.one_of(
    st.lists(st.tuples(HOURS, SAMPLE_TEXTS), max_size=12),
    # What Prometheus sends for byte counts: whole numbers in timestamp order, summed a day at a time.
    st.lists(st.tuples(HOURS, st.integers(0, 10**17).map(str)), max_size=12).map(sorted),
)
SERIES_LABELS = st.fixed_dictionaries(
    {"kafka_id": st.sampled_from(["lkc-1", "lkc-2"])},
    optional={"principal_id": st.sampled_from(["sa-1", "sa-2"])},
)


@example([({"kafka_id": "lkc-1", "principal_id": "sa-1"}, [(1, "5"), (2, "")])])
@example([({"kafka_id": "lkc-1", "principal_id": "sa-1"}, [(30, "5"), (1, "7"), (2, "9")])])
@example([({"kafka_id": "lkc-1", "principal_id": "sa-1"}, [(1, "0"), (30, "00")])])
@given(st.lists(st.tuples(SERIES_LABELS, POINTS), max_size=5))
def test_daily_usage_is_summarize_usage_of_each_days_rows(matrix):
    """The fold that skips rows and floats gives, to the digit, what summing each day's rows gives."""
    data = {
        "result": [
            {"metric": labels, "values": [[EPOCH + hour * 3600 - 0.001, text] for hour, text in points]}
            for labels, points in matrix
        ]
    }
    by_day: dict[date, list[MetricRow]] = {}
    for labels, points in PrometheusMetricsSource._series(BYTES_IN, data, 3600):
        for start, value in points:
            by_day.setdefault(start.date(), []).append(MetricRow(start, BYTES_IN.key, value, labels))
    summarized = {day: summarize_usage(rows, BYTES_IN, "lkc-1") for day, rows in sorted(by_day.items())}
    expected = {day: records for day, records in summarized.items() if records}
    usage = daily_usage(BYTES_IN, data, 3600, "lkc-1")
    assert {day: [(r.subject, str(r.value)) for r in records] for day, records in usage.items()} == {
        day: [(r.subject, str(r.value)) for r in records] for day, records in expected.items()
    }


@example([("a", 1.0), ("a", 7.836871534715689e-35), ("a", -2.247581292466944e16), ("a", -3.0222550363166e16)])
@example([("a", 5e-324), ("a", 1.7976931348623157e308), ("b", 0.1), ("b", 0.2), ("b", 3.0)])
@given(st.lists(st.tuples(st.sampled_from("ab"), st.floats(allow_nan=False, allow_infinity=False))))
def test_exact_sums_are_the_one_by_one_decimal_sums_to_the_exponent(values):
    """One by one, with every digit kept: at the default 28 digits, 1.0 + 7.8e-35 - 2.2e16 would round."""
    expected: dict[str, Decimal] = {}
    with localcontext(prec=EXACT_DIGITS):
        for key, value in values:
            expected[key] = expected.get(key, Decimal(0)) + Decimal(str(value))
    assert {key: str(total) for key, total in exact_sums(values).items()} == {
        key: str(total) for key, total in expected.items()
    }


def test_429_then_success(server, fake_time):
    server.route(QUERY_PATH, [Reply(429, {"status": "error"}, {"Retry-After": "0.01"}), Reply(body=MATRIX)])
    rows = _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    assert len(rows) == 2 and len(server.hits(QUERY_PATH)) == 2
    assert fake_time.waits == [0.01]


def test_500_four_times_is_an_error_after_four_attempts(server, fake_time):
    server.route(QUERY_PATH, Reply(500, {"status": "error", "errorType": "internal", "error": "tsdb down"}))
    with pytest.raises(MetricsQueryError) as caught:
        _source(server, fake_time, max_attempts=4).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    assert caught.value.status == 500 and caught.value.query_key == "bytes_in"
    assert "acme" in str(caught.value) and "tsdb down" in str(caught.value)
    assert len(server.hits(QUERY_PATH)) == 4
    assert len(fake_time.waits) == 3
    for wait, base in zip(fake_time.waits, (1, 2, 4), strict=True):
        assert base <= wait <= base + 1


def test_a_label_with_a_lone_surrogate_is_an_error_naming_it(server, fake_time):
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{**MATRIX["data"]["result"][0], "metric": {"kafka_id": "lkc-\udc00"}}],
        },
    }
    server.route(QUERY_PATH, Reply(body=body))
    with pytest.raises(MetricsQueryError) as caught:
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    assert "$.data.result[0].metric.kafka_id holds an unpaired UTF-16 surrogate" in str(caught.value)
    assert len(server.hits(QUERY_PATH)) == 1 and fake_time.waits == []


def test_status_error_json_is_an_error_without_retry(server, fake_time):
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    server.route(QUERY_PATH, Reply(200, body))
    with pytest.raises(MetricsQueryError, match="bad_data: parse error"):
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    server.route(QUERY_PATH, Reply(422, body))
    with pytest.raises(MetricsQueryError) as caught:
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, "lkc-1")
    assert caught.value.status == 422
    assert len(server.hits(QUERY_PATH)) == 2 and fake_time.waits == []


def test_timeouts_and_unreachable_servers_are_errors(server, fake_time):
    server.route(QUERY_PATH, [Reply(body=MATRIX, delay=0.4), Reply(body=MATRIX)])
    rows = _source(server, fake_time, timeout_seconds=0.1).query_range(
        BYTES_IN, Window.for_day(DAY), 3600, None
    )
    assert len(rows) == 2
    gone = PrometheusMetricsSource(
        PrometheusSettings(url="http://127.0.0.1:9", max_attempts=2), "acme", budget=fake_time.budget()
    )
    with pytest.raises(MetricsQueryError) as caught:
        gone.query_range(BYTES_IN, Window.for_day(DAY), 3600, None)
    assert caught.value.status is None


def test_non_matrix_or_non_json_is_an_error(server, fake_time):
    server.route(
        QUERY_PATH, Reply(body={"status": "success", "data": {"resultType": "vector", "result": []}})
    )
    with pytest.raises(MetricsQueryError, match="matrix"):
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, None)
    server.route(QUERY_PATH, Reply(raw=b"<html>proxy</html>"))
    with pytest.raises(MetricsQueryError, match="not JSON"):
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 3600, None)


def test_basic_and_bearer_auth_are_sent_and_never_shown(server, fake_time, caplog):
    caplog.set_level(logging.DEBUG)
    server.route(QUERY_PATH, [Reply(503, {"error": "rejected pw-Very-Secret"}), Reply(body=MATRIX)])
    basic = _source(
        server, fake_time, auth_type="basic", username="reader", password=Secret("pw-Very-Secret")
    )
    basic.query_range(BYTES_IN, Window.for_day(DAY), 3600, None)
    header = server.hits(QUERY_PATH)[-1].headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "reader:pw-Very-Secret"

    server.route(QUERY_PATH, Reply(401, {"status": "error", "error": "bad token tok-Very-Secret"}))
    bearer = _source(server, fake_time, auth_type="bearer", bearer_token=Secret("tok-Very-Secret"))
    with pytest.raises(MetricsQueryError) as caught:
        bearer.query_range(BYTES_IN, Window.for_day(DAY), 3600, None)
    assert server.hits(QUERY_PATH)[-1].headers["Authorization"] == "Bearer tok-Very-Secret"
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(basic), repr(bearer)):
        assert "Very-Secret" not in text
    assert "bad token ***" in str(caught.value)


def test_the_step_must_divide_the_window(server, fake_time):
    with pytest.raises(ValueError, match="divide"):
        _source(server, fake_time).query_range(BYTES_IN, Window.for_day(DAY), 7000, None)
    assert server.requests == []


# -- summarize_usage --


def _row(principal: str, value: float, cluster: str = "lkc-1", key: str = "bytes_in") -> MetricRow:
    return MetricRow(DAY_START, key, value, {"kafka_id": cluster, "principal_id": principal})


def test_summarize_sums_exactly_and_skips_what_is_not_usage():
    rows = [
        _row("sa-a", 0.1),
        _row("sa-a", 0.2),
        _row("sa-b", 0.0),
        _row("sa-c", -5.0),
        _row("sa-d", 3.0, cluster="lkc-2"),
        _row("sa-e", 4.0, key="bytes_out"),
        MetricRow(DAY_START, "bytes_in", 9.0, {"kafka_id": "lkc-1"}),
        _row("sa-0", 100.0),
    ]
    assert summarize_usage(rows, BYTES_IN, "lkc-1") == [
        UsageRecord("lkc-1", "bytes_in", "sa-0", Decimal("100.0")),
        UsageRecord("lkc-1", "bytes_in", "sa-a", Decimal("0.3")),
    ]


def test_summarize_needs_a_subject_label():
    anonymous = BYTES_IN.__class__(key="k", query_expression="x", label_keys=())
    with pytest.raises(ValueError, match="subject_label"):
        summarize_usage([], anonymous, "lkc-1")
