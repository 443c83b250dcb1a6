"""Range queries answered in worker processes, as Prometheus answers concurrent queries on every core.

The server answers HTTP from threads of one process, so without workers its range queries (drawing and
summing samples in numpy and Python) take turns on one core while the pipeline's metric workers wait on
them: a benchmark of the pipeline then mostly measures the stand-in. Workers are forked once, when the
server starts and before it has any thread, and inherit the organization's samples instead of receiving
them; generated and recorded samples alike are fixed for the life of the organization.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from chargeback_assets.sandbox.promql import RangeQuery, evaluate, success_body
from chargeback_assets.sandbox.usage import UsageStore

_store: UsageStore | None = None
"""The organization's samples, in a worker: set by the pool's initializer, inherited through the fork."""


def _adopt(store: UsageStore) -> None:
    global _store
    _store = store


def _answer(query: RangeQuery, start_ms: int, end_ms: int, step_ms: int) -> bytes:
    """The encoded reply, so that the server sends bytes and never re-encodes millions of values."""
    if _store is None:
        raise RuntimeError("a query worker answered before adopting the organization's samples")
    return json.dumps(success_body(evaluate(_store, query, start_ms, end_ms, step_ms))).encode()


class QueryWorkers:
    """`count` forked processes evaluating range queries; `answer` blocks its (server) thread meanwhile."""

    def __init__(self, store: UsageStore, count: int) -> None:
        if count < 1:
            raise ValueError(f"query workers must be at least 1, got {count}")
        self._pool = ProcessPoolExecutor(
            count, mp_context=multiprocessing.get_context("fork"), initializer=_adopt, initargs=(store,)
        )
        # With fork, the first task launches every worker: do it now, while this process has no threads.
        self._pool.submit(int).result()

    def answer(self, query: RangeQuery, start_ms: int, end_ms: int, step_ms: int) -> bytes:
        """The JSON reply to a range query; raises `BadQuery` as evaluating it in this process would."""
        return self._pool.submit(_answer, query, start_ms, end_ms, step_ms).result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
