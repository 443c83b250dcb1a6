"""Computing a stage's next items in a background thread while the caller handles the current one.

Dagster stores every check evaluation as it is yielded, with a commit (an fsync) or more on its event log
per partition: time in which the run's own thread waits on the disk with the GIL released. A check that
computes the next day's verdict meanwhile hides most of its own work behind that wait. The items are made
by a generator run entirely in the background thread, so that what it opens (a database connection, which
SQLite ties to its thread) is opened, used and closed there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

AHEAD = 2
"""Items computed before the caller has taken them: enough to keep the thread busy, and a bound on memory."""

_POLL_S = 0.1


def computed_ahead(items: Callable[[], Generator[T, None, None]], ahead: int = AHEAD) -> Iterator[T]:
    """The items of `items()`, in order, computed in a background thread up to `ahead` items early.

    An exception in the thread is raised here, after the items before it. When the caller stops early
    (an error of its own, a Terminate), the thread stops at its next item and is joined before this returns,
    so nothing of the stage outlives it.
    """
    handoff: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(done: bool, value: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put((done, value), timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        generator = items()
        try:
            for item in generator:
                if not put(False, item):
                    return
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            put(True, exc)
            return
        finally:
            generator.close()  # here, in this thread, whether or not the caller took every item
        put(True, None)

    thread = threading.Thread(target=produce, name="computed-ahead", daemon=True)
    thread.start()
    try:
        while True:
            done, value = handoff.get()
            if not done:
                yield value  # type: ignore[misc]
            elif value is None:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
