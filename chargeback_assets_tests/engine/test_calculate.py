"""Line and day calculation: active fraction (scenario 10), the retry limit (scenario 17), reconciliation."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from chargeback_assets.engine.allocation import EvenSplit, Terminal, chain, merged_active
from chargeback_assets.engine.calculate import (
    INACTIVE_DETAIL,
    LinePlan,
    ReconciliationError,
    active_fraction,
    allocate_day,
    allocate_line,
    line_window,
)
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.engine.models import (
    UNALLOCATED,
    UTC,
    AllocationResult,
    IdentityResolution,
    Resource,
    Window,
)

from .builders import identities, line

START = datetime(2024, 1, 15, 12, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(hours=24))


def resource(created: timedelta | None = None, deleted: timedelta | None = None) -> Resource:
    return Resource(
        "self_managed_kafka",
        "t",
        "r1",
        "cluster",
        created_at=None if created is None else START + created,
        deleted_at=None if deleted is None else START + deleted,
    )


@pytest.mark.parametrize(
    ("res", "window", "expected"),
    [
        (resource(created=timedelta(0)), WINDOW, "1"),
        (resource(created=timedelta(hours=12)), WINDOW, "0.5"),
        (resource(deleted=timedelta(hours=12)), WINDOW, "0.5"),
        (resource(created=timedelta(hours=30)), WINDOW, "0"),
        (resource(deleted=timedelta(hours=-1)), WINDOW, "0"),
        (resource(), WINDOW, "1"),
        (resource(created=timedelta(hours=12)), Window(START, START), "1"),
        (None, WINDOW, "1"),
    ],
    ids=[
        "created-at-start",
        "created-midway",
        "deleted-midway",
        "created-after",
        "deleted-before",
        "nulls",
        "zero-window",
        "uncached",
    ],
)
def test_active_fraction(res, window, expected) -> None:
    assert active_fraction(res, window) == Decimal(expected)


EVERYONE = chain(EvenSplit(merged_active), Terminal(UNALLOCATED))


def test_provider_prorated_line_is_allocated_in_full_even_for_a_part_day_resource() -> None:
    """DESIGN §6: Confluent already prorated the bill; scaling it again would under-charge."""
    billed = line("100", timestamp=START)
    resolution = IdentityResolution(resource_active=identities("a", "b", "c"))
    rows = allocate_line(
        billed, EVERYONE.allocate, resolution, window=WINDOW, resource=resource(timedelta(hours=12))
    )
    assert [str(r.amount) for r in rows] == ["33.3334", "33.3333", "33.3333"]


def test_constructed_line_charges_its_inactive_share_to_the_resource() -> None:
    """DESIGN §6: a cost model billed a whole day; the half the resource did not exist goes to it."""
    billed = line("100", timestamp=START, provider_prorated=False, resource_id="r1")
    resolution = IdentityResolution(resource_active=identities("a", "b", "c"))
    rows = allocate_line(
        billed, EVERYONE.allocate, resolution, window=WINDOW, resource=resource(timedelta(hours=12))
    )
    assert [(r.identity_id, str(r.amount), r.allocation_detail) for r in rows] == [
        ("a", "16.6666", None),
        ("b", "16.6667", None),
        ("c", "16.6667", None),
        ("r1", "50.0000", INACTIVE_DETAIL),
    ]
    assert sum(r.amount for r in rows) == Decimal("100")


def test_constructed_line_of_a_resource_absent_all_window_goes_wholly_to_the_resource() -> None:
    billed = line("12.5", timestamp=START, provider_prorated=False, resource_id="r1")
    rows = allocate_line(
        billed, EVERYONE.allocate, IdentityResolution(), window=WINDOW, resource=resource(timedelta(hours=30))
    )
    assert [(r.identity_id, str(r.amount), r.allocation_detail) for r in rows] == [
        ("r1", "12.5000", INACTIVE_DETAIL)
    ]


def test_rows_that_do_not_sum_to_the_bill_are_refused() -> None:
    def leaky(ctx) -> AllocationResult:
        return AllocationResult(EVERYONE.allocate(ctx).rows[:1])

    resolution = IdentityResolution(resource_active=identities("a", "b"))
    with pytest.raises(ReconciliationError, match=r"sum to 5\.0000, billed 10\.00"):
        allocate_line(line("10.00"), leaky, resolution, window=WINDOW)


def failing(ctx) -> AllocationResult:
    raise RuntimeError("boom")


def plan_for(billed, allocator=failing) -> LinePlan:
    return LinePlan(billed, allocator, IdentityResolution(), line_window(billed))


class Flaky:
    """An allocator that raises its first `failures` calls, then allocates to everyone; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, ctx) -> AllocationResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("boom")
        return EVERYONE.allocate(ctx)


def test_an_always_failing_line_is_booked_to_unallocated_in_one_allocation() -> None:
    """Scenario 17 with limit 3, settled at once: three failed attempts, then the full cost to UNALLOCATED,
    while the healthy line of the day is allocated as usual."""
    billed = line("42.4242")
    good = line("1.00", product_type="SUPPORT", resource_id="")
    always = Flaky(failures=10)
    outcome = allocate_day(
        [plan_for(billed, always), plan_for(good, EVERYONE.allocate)], prior_attempts={}, retry_limit=3
    )
    failed, healthy = outcome.rows
    assert (failed.identity_id, failed.amount, failed.allocation_method) == (
        UNALLOCATED,
        Decimal("42.4242"),
        "ALLOCATION_FAILED",
    )
    assert failed.allocation_detail == "Failed after 3 attempts: RuntimeError: boom"
    assert (healthy.identity_id, healthy.amount, healthy.allocation_method) == (
        UNALLOCATED,
        Decimal("1.00"),
        "terminal",
    )
    assert always.calls == 3
    assert outcome.failed_attempts == {line_id(billed): 3}
    assert [(f.line, f.attempts) for f in outcome.exhausted] == [(billed, 3)]


def test_a_line_that_fails_and_then_allocates_is_charged_as_usual() -> None:
    billed = line("9.00")
    flaky = Flaky(failures=2)
    plan = LinePlan(
        billed, flaky, IdentityResolution(resource_active=identities("a", "b")), line_window(billed)
    )
    outcome = allocate_day([plan], prior_attempts={}, retry_limit=3)
    assert [(r.identity_id, str(r.amount)) for r in outcome.rows] == [("a", "4.5000"), ("b", "4.5000")]
    assert (outcome.failed_attempts, outcome.exhausted) == ({line_id(billed): 2}, [])


@pytest.mark.parametrize(("prior", "tries", "booked_after"), [(1, 2, 3), (3, 1, 4), (5, 1, 6)])
def test_attempts_made_on_the_same_bill_before_count_toward_the_limit(prior, tries, booked_after) -> None:
    """A recomputation of an unchanged bill does not start over: a line past its limit gets one more try."""
    billed = line("5")
    always = Flaky(failures=10)
    outcome = allocate_day([plan_for(billed, always)], prior_attempts={line_id(billed): prior}, retry_limit=3)
    assert always.calls == tries
    assert outcome.failed_attempts == {line_id(billed): tries}
    [row] = outcome.rows
    assert row.allocation_detail == f"Failed after {booked_after} attempts: RuntimeError: boom"


def test_retry_limit_one_books_the_fallback_at_once() -> None:
    outcome = allocate_day([plan_for(line("5"))], prior_attempts={}, retry_limit=1)
    assert [(r.allocation_method, str(r.amount)) for r in outcome.rows] == [("ALLOCATION_FAILED", "5")]


@pytest.mark.parametrize(
    ("granularity", "hours"), [("hourly", 1), ("daily", 24), ("monthly", 31 * 24), ("quarter_day", 6)]
)
def test_line_window_follows_granularity(granularity: str, hours: int) -> None:
    billed = line("1", granularity=granularity, timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    window = line_window(billed, {"quarter_day": 6})
    assert window.end - window.start == timedelta(hours=hours)


def test_unknown_granularity_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown billing granularity 'fortnightly'"):
        line_window(line("1", granularity="fortnightly"))
