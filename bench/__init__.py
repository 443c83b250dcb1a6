"""Benchmarks of the chargeback pipeline (`make bench`, `python -m bench [name ...]`).

Benchmarks are not tests: they assert nothing about time, they measure and print. Each one runs in a fresh
child process so that the peak RSS it reports is its own, not the sum of everything measured before it.

A benchmark module exposes `run() -> dict`. The harness (`bench.harness`) prints one summary line from it
and reads these keys when present, printing any other key as `key=value`:

- `title` (str): the label of the line; the registry name otherwise.
- `median_s` (float) and `runs` (int): the median wall time and how many repetitions it is the median of.
- `figures` (list of str): further figures, printed in order (rows/s, requests, per-part medians...).
- `target_s`, `target_rss_mb` (float): the targets; the line ends with OK or MISSED against them.
- `details` (list of str): extra lines printed under the summary (per stage, per part).
"""
