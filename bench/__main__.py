"""`python -m bench [name ...]`: run every benchmark (or the named ones), each in a fresh process."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from bench.harness import BenchmarkFailed, child_main, run_in_child, summary_lines

BENCHMARKS = {
    "allocation": "bench.allocation",
    "sandbox_day": "bench.sandbox_day",
    "backfill": "bench.backfill",
    "scale": "bench.scale",
    "emit": "bench.emit",
    "partition_metadata": "bench.partition_metadata",
    "topics": "bench.topics",
    "postgres": "bench.postgres",
}
"""Name -> module with `run() -> dict`. `emit` is optional: listed only when its module exists."""


def available() -> dict[str, str]:
    return {
        name: module for name, module in BENCHMARKS.items() if importlib.util.find_spec(module) is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    known = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run: {', '.join(known)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    failed = 0
    for name in args.names or list(known):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            result = run_in_child(known[name])
        except BenchmarkFailed as exc:
            failed += 1
            print(f"{name}  FAILED\n{exc}", flush=True)
            continue
        print("\n".join(summary_lines(name, result)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
