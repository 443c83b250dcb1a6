"""The one PromQL shape the project issues, evaluated like Prometheus 2.x over the organization's samples.

Shape: `sum by (<labels>) (sum_over_time(<metric>{<label>="<value>",...}[<N>s]))` with equality matchers
only (see notes/metrics-protocol.md). Range selectors are inclusive at both ends, [t - N, t], as in
Prometheus 2.x; all arithmetic is on integer milliseconds so boundaries are exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from chargeback_assets.sandbox.usage import Series, UsageStore

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series

_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_QUERY = re.compile(
    rf"""^\s*sum\s+by\s*\(\s*(?P<by>{_NAME}(?:\s*,\s*{_NAME})*)\s*,?\s*\)\s*
    \(\s*sum_over_time\s*\(\s*(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*
    (?:\{{(?P<matchers>[^}}]*)\}})?\s*\[\s*(?P<range>\d+[smhd])\s*\]\s*\)\s*\)\s*$""",
    re.VERBOSE,
)
_MATCHER = re.compile(rf'\s*({_NAME})\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class BadQuery(ValueError):
    """Answered as HTTP 400 with errorType bad_data, as Prometheus does."""


@dataclass(frozen=True, slots=True)
class RangeQuery:
    group_by: tuple[str, ...]
    metric: str
    matchers: tuple[tuple[str, str], ...]
    range_ms: int


def parse_query(text: str) -> RangeQuery:
    match = _QUERY.match(text)
    if not match:
        raise BadQuery(
            f"unsupported query {text!r}: the sandbox answers only "
            'sum by (<labels>) (sum_over_time(<metric>{<label>="<value>",...}[<N>s]))'
        )
    matchers: list[tuple[str, str]] = []
    body = (match["matchers"] or "").strip()
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise BadQuery(f'unsupported label matcher in {body!r}: only label="value" is allowed')
        matchers.append((m[1], re.sub(r"\\(.)", r"\1", m[2])))
        pos = m.end()
    return RangeQuery(
        group_by=tuple(label.strip() for label in match["by"].split(",")),
        metric=match["metric"],
        matchers=tuple(matchers),
        range_ms=parse_duration_ms(match["range"]),
    )


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration (`3600s`, `1h`) or a plain number of seconds."""
    m = _DURATION.match(text.strip())
    if m:
        ms = int(m[1]) * _UNIT_MS[m[2]]
    else:
        try:
            ms = round(float(text) * 1000)
        except ValueError:
            raise BadQuery(f"cannot parse {text!r} to a valid duration") from None
    if ms <= 0:
        raise BadQuery(f"zero or negative duration {text!r} is not accepted")
    return ms


def parse_time_ms(text: str) -> int:
    """Epoch seconds with decimals, or RFC 3339, to integer milliseconds (as Prometheus does)."""
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"cannot parse {text!r} to a valid timestamp") from None
    if moment.tzinfo is None:
        raise BadQuery(f"timestamp {text!r} has no time zone")
    return round(moment.timestamp() * 1000)


def evaluate(store: UsageStore, query: RangeQuery, start_ms: int, end_ms: int, step_ms: int) -> list[dict]:
    """The `data.result` matrix: one entry per group, [[t seconds, "v"], ...] for the steps with samples."""
    if end_ms < start_ms:
        raise BadQuery("end timestamp must not be before start time")
    if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS:
        raise BadQuery(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution"
        )
    eval_ms = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    groups: dict[tuple[tuple[str, str], ...], tuple[np.ndarray, np.ndarray]] = {}
    for series in store.matching(query.metric, query.matchers):
        labels = series.label_dict()
        sums, present = _sum_over_time(store, series, eval_ms, query.range_ms)
        if not present.any():
            continue
        key = tuple((label, labels[label]) for label in query.group_by if label in labels)
        if key in groups:
            total, seen = groups[key]
            groups[key] = (total + sums, seen | present)
        else:
            groups[key] = (sums, present)
    result = []
    for key in sorted(groups):
        total, seen = groups[key]
        times = (eval_ms[seen] / 1000).tolist()
        values = list(map(list, zip(times, _format_values(total[seen]), strict=True)))
        result.append({"metric": dict(key), "values": values})
    return result


def success_body(result: list[dict]) -> dict:
    """A range query's 200 reply around its `data.result` matrix."""
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _sum_over_time(
    store: UsageStore, series: Series, eval_ms: np.ndarray, range_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    ts, vs = store.samples(series, int(eval_ms[0]) - range_ms, int(eval_ms[-1]))
    if ts.size == 0:
        return np.zeros(eval_ms.size), np.zeros(eval_ms.size, dtype=bool)
    cumulative = np.concatenate(([0.0], np.cumsum(vs)))
    left = np.searchsorted(ts, eval_ms - range_ms, "left")
    right = np.searchsorted(ts, eval_ms, "right")
    return cumulative[right] - cumulative[left], right > left


def _format_values(values: np.ndarray) -> list[str]:
    """`_format_value` of each; a range of whole numbers (byte counts, the usual answer) in one conversion."""
    if values.size and (np.floor(values) == values).all() and np.abs(values).max() < 2**53:
        return list(map(str, values.astype(np.int64).tolist()))
    return [_format_value(value) for value in values.tolist()]


def _format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent.

    Python's `repr` gives the same shortest digits and writes no exponent between 1e-4 and 1e16, so numpy's
    slower positional formatter is left for the values outside that range (and NaN, Inf)."""
    if value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else np.format_float_positional(value, trim="-")
    if 1e-4 <= abs(value) < 1e16:
        return repr(value)
    return np.format_float_positional(value, trim="-")
