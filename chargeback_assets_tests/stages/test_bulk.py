import gc

import pytest

from chargeback_assets.stages.bulk import collector_paused


def test_the_collector_is_paused_for_a_block_and_left_as_it_was() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the destination refused")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "whoever paused it first turns it back on"
    finally:
        gc.enable()


def test_as_a_decorator_it_pauses_during_the_stage_only() -> None:
    seen = []

    @collector_paused()
    def stage() -> None:
        seen.append(gc.isenabled())

    stage()
    stage()
    assert seen == [False, False]
    assert gc.isenabled()
