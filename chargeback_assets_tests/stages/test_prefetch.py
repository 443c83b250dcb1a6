import threading
import time
from collections.abc import Generator

import pytest

from chargeback_assets.stages.prefetch import computed_ahead


def test_items_come_in_order_and_are_made_in_another_thread() -> None:
    made_in = set()

    def items() -> Generator[int, None, None]:
        for i in range(10):
            made_in.add(threading.current_thread().name)
            yield i

    assert list(computed_ahead(items)) == list(range(10))
    assert made_in == {"computed-ahead"}


def test_an_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Generator[int, None, None]:
        yield 1
        yield 2
        raise ValueError("day 3 failed")

    taken = []
    with pytest.raises(ValueError, match="day 3 failed"):
        for item in computed_ahead(items):
            taken.append(item)
    assert taken == [1, 2]


def test_a_caller_that_stops_early_leaves_no_thread_and_closes_the_items_in_their_thread() -> None:
    """What the items opened (a database connection) is closed by the thread that opened it, before the
    caller goes on."""
    closed_in = []

    def items() -> Generator[int, None, None]:
        try:
            yield from range(1000)
        finally:
            closed_in.append(threading.current_thread().name)

    consumer = computed_ahead(items)
    assert next(consumer) == 0
    consumer.close()
    assert closed_in == ["computed-ahead"]
    assert not any(t.name == "computed-ahead" for t in threading.enumerate())


def test_the_next_item_is_computed_while_the_caller_holds_one_and_none_beyond_it() -> None:
    """The overlap is the point (the caller's work hides the next item's), and one item ahead bounds a stage
    to two days in memory."""
    started = [threading.Event() for _ in range(4)]

    def items() -> Generator[int, None, None]:
        for i, event in enumerate(started):
            event.set()
            yield i

    consumer = computed_ahead(items)
    assert next(consumer) == 0
    assert started[1].wait(timeout=30), "item 1 was not computed while the caller held item 0"
    time.sleep(0.2)  # room for a wrong implementation to run further ahead
    assert not started[2].is_set()
    assert list(consumer) == [1, 2, 3]
