"""Computing a stage's next item in a background thread while the caller handles the current one.

Dagster stores every check evaluation as it is yielded, with a commit (an fsync) or more on its event log
per partition, and SQLite writes a day's chargeback with the GIL released: time in which the run's own
thread leaves the interpreter free. Computing the next day's verdict or allocation meanwhile hides most of
it. The items are made by a generator run entirely in the background thread, so that what it opens (a
database connection, which SQLite ties to its thread) is opened, used and closed there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.1


def computed_ahead(items: Callable[[], Generator[T, None, None]]) -> Iterator[T]:
    """The items of `items()`, in order, each computed in a background thread while the caller handles the
    one before it.

    At most one item is computed ahead of the one the caller holds, so a stage holds at most two days in
    memory. An exception in the thread is raised here, after the items before it. When the caller stops
    early (an error of its own, a Terminate), the thread stops at its next item and is joined before this
    returns, so nothing of the stage outlives it.
    """
    handoff: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
    may_compute = threading.Semaphore(1)  # released each time the caller takes an item
    stop = threading.Event()

    def wait_for_turn() -> bool:
        while not stop.is_set():
            if may_compute.acquire(timeout=_POLL_S):
                return True
        return False

    def produce() -> None:
        generator = items()
        try:
            while wait_for_turn():
                try:
                    item = next(generator)
                except StopIteration:
                    handoff.put((True, None))
                    return
                handoff.put((False, item))
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            handoff.put((True, exc))
        finally:
            generator.close()  # here, in this thread, whether or not the caller took every item

    thread = threading.Thread(target=produce, name="computed-ahead", daemon=True)
    thread.start()
    try:
        while True:
            done, value = handoff.get()
            if done:
                if value is not None:
                    raise value  # type: ignore[misc]
                return
            may_compute.release()  # the next item is computed while the caller holds this one
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
