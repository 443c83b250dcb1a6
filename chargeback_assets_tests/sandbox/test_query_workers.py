"""Range queries answered by forked worker processes are the answers the server gives by itself.

The worker-backed server runs in a spawned process of its own, as the benchmark's does: forking needs a
process without threads, which a test process is not.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import requests

from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.generator import FLINK_CFU, REQUEST_BYTES
from chargeback_assets_tests.sandbox.conftest import END

from .test_promql import STEP, TEMPLATE, S

SEED = 7
WORKERS = 2


def _serve_with_workers(conn: Connection) -> None:
    org = generate_org("small", seed=SEED, end_date=END, days=35)
    with SandboxServer(org, query_workers=WORKERS) as server:
        conn.send((server.url, len(multiprocessing.active_children())))
        conn.recv()  # until the test is done


@contextmanager
def worker_backed_server() -> Iterator[tuple[str, int]]:
    """Its URL, and how many child processes it has (its workers)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    # Not a daemon: a daemonic process may not start the workers.
    process = context.Process(target=_serve_with_workers, args=(child,))
    process.start()
    try:
        while not parent.poll(0.2):
            if not process.is_alive():
                raise RuntimeError(f"the worker-backed sandbox exited with status {process.exitcode}")
        yield parent.recv()
        parent.send("stop")
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


def _forms(org) -> list[dict[str, str]]:
    cluster = next(s.label_dict()["kafka_id"] for s in org.usage.series(REQUEST_BYTES))
    pool = next(s.label_dict()["compute_pool_id"] for s in org.usage.series(FLINK_CFU))
    queries = [
        TEMPLATE.format(
            labels="principal_id", metric=REQUEST_BYTES, label="kafka_id", value=cluster, step=STEP
        ),
        TEMPLATE.format(
            labels="flink_statement_name", metric=FLINK_CFU, label="compute_pool_id", value=pool, step=STEP
        ),
    ]
    span = {"start": f"{S - 3 * 86_400 + STEP - 0.001:.3f}", "end": f"{S + 86_400 - 0.001:.3f}"}
    return [{"query": q, **span, "step": str(STEP)} for q in queries] + [
        {"query": queries[0], **span, "step": "1"},  # too many points: refused in the worker, as at home
        {"query": "up", **span, "step": str(STEP)},
    ]


def test_worker_processes_answer_exactly_what_the_server_answers_alone(small_org):
    """`small_org` is the organization the worker-backed server generates for itself (same size and seed)."""
    statuses = []
    with SandboxServer(small_org) as alone, worker_backed_server() as (url, children):
        assert children == WORKERS
        for form in _forms(small_org):
            own = requests.post(alone.url + "/api/v1/query_range", data=form, timeout=30)
            theirs = requests.post(url + "/api/v1/query_range", data=form, timeout=30)
            assert (theirs.status_code, theirs.json()) == (own.status_code, own.json())
            assert theirs.headers["Content-Type"] == "application/json"
            statuses.append(own.status_code)
            if own.status_code == 200:
                assert own.json()["data"]["result"], f"{form['query']} has samples to compare"
    assert statuses == [200, 200, 400, 400]
