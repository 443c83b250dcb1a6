"""Metric samples of the simulated organization: gauges of per-interval deltas, as Confluent exports them.

A large organization over 35 days holds hundreds of millions of samples, so generated series are never
materialized whole: each (series, UTC day) is drawn on demand from a numpy generator seeded by
(seed, series key, day) and kept in a small LRU cache. Snapshots hold explicit arrays instead; both kinds
answer the same `samples()` question, so the Prometheus stand-in does not care where they come from.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from threading import Lock

import numpy as np

DAY_MS = 86_400_000


def stable_int(*parts: object) -> int:
    """A 64-bit integer from strings, stable across processes (unlike `hash()` of a str)."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Profile:
    """How a generated series behaves: its level, shape and lifetime."""

    kind: str  # "bytes" (integer deltas), "bursty" (one busy hour a day), "cfu" (multiples of 0.5), "share"
    level: float
    step_ms: int
    active_from_ms: int
    active_until_ms: int
    sources: tuple[Series, ...] = ()
    """For "share": the series whose per-step sum this one takes `level` (a fraction) of, rounded down."""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in self.labels) + "}"

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


Samples = tuple[np.ndarray, np.ndarray]
"""(timestamps in epoch milliseconds as int64, values as float64), sorted by timestamp."""


class UsageStore(ABC):
    """The organization's metric series and their samples."""

    def __init__(self, all_series: Iterable[Series]) -> None:
        self._by_metric: dict[str, list[Series]] = {}
        self._by_label: dict[tuple[str, str, str], list[Series]] = {}
        for series in all_series:
            self._by_metric.setdefault(series.name, []).append(series)
            for label, value in series.labels:
                self._by_label.setdefault((series.name, label, value), []).append(series)

    def series(self, metric: str) -> list[Series]:
        return list(self._by_metric.get(metric, ()))

    def matching(self, metric: str, matchers: Iterable[tuple[str, str]]) -> list[Series]:
        """Series of `metric` whose labels equal every matcher (an empty value matches an absent label)."""
        wanted = dict(matchers)
        candidates = self._by_metric.get(metric, [])
        for label, value in wanted.items():
            if value:
                candidates = self._by_label.get((metric, label, value), [])
                break
        return [s for s in candidates if all(dict(s.labels).get(k, "") == v for k, v in wanted.items())]

    def all_series(self) -> list[Series]:
        return [series for name in sorted(self._by_metric) for series in self._by_metric[name]]

    @abstractmethod
    def samples(self, series: Series, start_ms: int, end_ms: int) -> Samples:
        """Samples with start_ms <= timestamp <= end_ms (both inclusive, like a Prometheus range)."""

    @abstractmethod
    def extent_ms(self, series: Series) -> tuple[int, int]:
        """[first, last] timestamps this series may hold, for dumping it whole."""


class GeneratedUsage(UsageStore):
    def __init__(self, seed: int, profiles: dict[Series, Profile], cache_days: int = 8192) -> None:
        super().__init__(profiles)
        self._seed = seed
        self._profiles = profiles
        self._cache: OrderedDict[tuple[Series, int], Samples] = OrderedDict()
        self._cache_days = cache_days
        self._sums: OrderedDict[tuple[tuple[Series, ...], int], tuple[np.ndarray, np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self._lock = Lock()
        self._series_seeds: dict[Series, int] = {}

    def extent_ms(self, series: Series) -> tuple[int, int]:
        profile = self._profiles[series]
        return profile.active_from_ms, profile.active_until_ms - 1

    def samples(self, series: Series, start_ms: int, end_ms: int) -> Samples:
        profile = self._profiles[series]
        lo, hi = max(start_ms, profile.active_from_ms), min(end_ms, profile.active_until_ms - 1)
        if lo > hi:
            return _EMPTY
        parts = [self._day(series, profile, day) for day in range(lo // DAY_MS, hi // DAY_MS + 1)]
        ts = np.concatenate([p[0] for p in parts])
        vs = np.concatenate([p[1] for p in parts])
        left, right = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
        return ts[left:right], vs[left:right]

    def _day(self, series: Series, profile: Profile, day: int) -> Samples:
        key = (series, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        if profile.kind == "share":
            day_samples = self._share_of_day(profile, day)
        else:
            series_seed = self._series_seeds.get(series)
            if series_seed is None:
                series_seed = self._series_seeds[series] = stable_int(series.key)
            day_samples = _draw_day(self._seed, series_seed, profile, day)
        with self._lock:
            self._cache[key] = day_samples
            if len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return day_samples

    def _share_of_day(self, profile: Profile, day: int) -> Samples:
        """`level` of the sources' per-step sum, on their common step grid, while this series is active."""
        grid, total, seen = self._sources_day(profile.sources, profile.step_ms, day)
        keep = seen & (grid >= profile.active_from_ms) & (grid < profile.active_until_ms)
        return grid[keep], np.floor(total[keep] * profile.level)

    def _sources_day(
        self, sources: tuple[Series, ...], step_ms: int, day: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The per-step sum of `sources` over one day (and which steps had a sample), computed once for all
        the topics that take a share of it."""
        key = (sources, day)
        with self._lock:
            hit = self._sums.get(key)
            if hit is not None:
                self._sums.move_to_end(key)
                return hit
        start = day * DAY_MS
        grid = np.arange(start, start + DAY_MS, step_ms, dtype=np.int64)
        total = np.zeros(grid.size)
        seen = np.zeros(grid.size, dtype=bool)
        for source in sources:
            ts, vs = self._day(source, self._profiles[source], day)
            at = np.searchsorted(grid, ts)
            np.add.at(total, at, vs)
            seen[at] = True
        with self._lock:
            self._sums[key] = (grid, total, seen)
            if len(self._sums) > self._cache_days:
                self._sums.popitem(last=False)
        return grid, total, seen


def _draw_day(seed: int, series_seed: int, profile: Profile, day: int) -> Samples:
    """`series_seed` is `stable_int(series.key)`, worked out once per series by the caller: a backfill draws
    tens of thousands of series-days and the digest would otherwise be most of the cost outside numpy."""
    start = day * DAY_MS
    ts = np.arange(start, start + DAY_MS, profile.step_ms, dtype=np.int64)
    active = None
    if profile.active_from_ms > start or profile.active_until_ms < start + DAY_MS:
        active = (ts >= profile.active_from_ms) & (ts < profile.active_until_ms)
        ts = ts[active]
    rng = np.random.default_rng([seed, series_seed, day])
    n = ts.size
    if profile.kind == "cfu":
        values = rng.integers(1, int(profile.level * 2) + 1, n).astype(np.float64) / 2
    elif profile.kind == "bursty":
        values = rng.integers(0, 8, n).astype(np.float64)
        burst_hour = int(rng.integers(0, 24))
        in_burst = (ts - start) // 3_600_000 == burst_hour
        values[in_burst] = np.floor(profile.level * 60 * rng.lognormal(0.0, 0.3, int(in_burst.sum())))
    else:
        swing = _daily_swing(profile.step_ms)
        daily_swing = swing if active is None else swing[active]
        values = np.floor(profile.level * daily_swing * rng.lognormal(0.0, 0.4, n))
    return ts, values


@cache
def _daily_swing(step_ms: int) -> np.ndarray:
    """The sine a steady series' level follows over a UTC day, at each step: the same for every day."""
    offsets = np.arange(0, DAY_MS, step_ms, dtype=np.int64)
    swing = 1.0 + 0.5 * np.sin(offsets / DAY_MS * 2 * np.pi)
    swing.setflags(write=False)
    return swing


_EMPTY: Samples = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class RecordedSeries:
    """A snapshot series: samples from `start_ms` every `step_ms`; NaN marks a missing sample."""

    start_ms: int
    step_ms: int
    values: np.ndarray


class RecordedUsage(UsageStore):
    def __init__(self, recorded: dict[Series, RecordedSeries]) -> None:
        super().__init__(recorded)
        self._recorded = recorded

    def extent_ms(self, series: Series) -> tuple[int, int]:
        rec = self._recorded[series]
        return rec.start_ms, rec.start_ms + (rec.values.size - 1) * rec.step_ms

    def samples(self, series: Series, start_ms: int, end_ms: int) -> Samples:
        rec = self._recorded[series]
        first = max(0, -(-(start_ms - rec.start_ms) // rec.step_ms))
        last = min(rec.values.size - 1, (end_ms - rec.start_ms) // rec.step_ms)
        if first > last:
            return _EMPTY
        values = rec.values[first : last + 1]
        ts = rec.start_ms + np.arange(first, last + 1, dtype=np.int64) * rec.step_ms
        present = ~np.isnan(values)
        return ts[present], values[present]
