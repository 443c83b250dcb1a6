"""Running one benchmark in a fresh child process, and turning its result into one summary line.

The child imports the benchmark module, calls `run()`, adds its own peak RSS (`ru_maxrss`, KiB on Linux)
and prints the result as one JSON line after a marker; the parent reads that line back. Anything else the
child prints (Dagster logs) is kept out of the summary and shown only if the child fails.
"""

from __future__ import annotations

import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

RESULT_MARKER = "BENCH-RESULT "
_KNOWN_KEYS = ("title", "median_s", "runs", "figures", "target_s", "target_rss_mb", "details", "peak_rss_kib")

T = TypeVar("T")


class BenchmarkFailed(RuntimeError):
    """A benchmark child exited without a result; the message carries the tail of its output."""


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def median(seconds: list[float]) -> float:
    return statistics.median(seconds)


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_main(module_name: str) -> int:
    """Entry point of the child: run one benchmark module and print its result for the parent."""
    result = dict(importlib.import_module(module_name).run())
    result["peak_rss_kib"] = peak_rss_kib()
    print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
    return 0


def run_in_child(module_name: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--child", module_name],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-40:])
    raise BenchmarkFailed(f"{module_name} exited with status {completed.returncode} and no result:\n{tail}")


def thousands(value: float) -> str:
    return f"{value:,.0f}"


def megabytes(kib: float) -> float:
    return kib / 1024


def verdict(result: dict[str, Any]) -> str:
    """`target < 0.5 s, < 300 MB: OK` (or MISSED), from whichever targets the result names."""
    targets, met = [], True
    if "target_s" in result:
        targets.append(f"< {result['target_s']:g} s")
        met = met and result["median_s"] < result["target_s"]
    if "target_rss_mb" in result:
        targets.append(f"< {result['target_rss_mb']:g} MB")
        met = met and megabytes(result["peak_rss_kib"]) < result["target_rss_mb"]
    if not targets:
        return ""
    return f"target {', '.join(targets)}: {'OK' if met else 'MISSED'}"


def summary_lines(name: str, result: dict[str, Any]) -> list[str]:
    parts = [str(result.get("title", name))]
    if "median_s" in result:
        parts.append(f"median {result['median_s']:.2f} s")
    if "runs" in result:
        parts.append(f"({result['runs']} run{'s' if result['runs'] != 1 else ''})")
    parts += [str(figure) for figure in result.get("figures", [])]
    parts += [f"{key}={value}" for key, value in result.items() if key not in _KNOWN_KEYS]
    parts.append(f"peak RSS {megabytes(result['peak_rss_kib']):,.0f} MB")
    if judged := verdict(result):
        parts.append(judged)
    return ["  ".join(parts), *(f"    {line}" for line in result.get("details", []))]
