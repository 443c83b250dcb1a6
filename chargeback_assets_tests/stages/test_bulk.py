import gc
import weakref
from collections.abc import Iterator

import dagster as dg
import pytest

from chargeback_assets.config import CONFIG_ENV_VAR
from chargeback_assets.stages.bulk import collector_paused, freeze_loaded_objects
from chargeback_assets_tests.dagster_processes import REPO_ROOT


class _Node:
    """A cyclic object: only the collector, not reference counting, can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def thawed_after() -> Iterator[None]:
    """The test process goes back to collecting everything."""
    yield
    gc.unfreeze()


def _collected(obj: object) -> bool:
    return any(tracked is obj for tracked in gc.get_objects())


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


def test_freezing_takes_what_is_loaded_out_of_collections_but_not_what_comes_after(thawed_after) -> None:
    loaded = _Node()
    assert _collected(loaded)
    freeze_loaded_objects()
    assert not _collected(loaded), "frozen: no collection walks it any more"
    later = _Node()
    assert _collected(later)


def test_garbage_is_collected_before_freezing_and_a_reload_thaws_what_it_replaces(thawed_after) -> None:
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    freeze_loaded_objects()
    assert gone() is None, "garbage at freezing time is collected, not frozen for ever"
    replaced = _Node()
    freeze_loaded_objects()
    was_loaded = weakref.ref(replaced)
    del replaced
    freeze_loaded_objects()  # the next load of the code location
    assert was_loaded() is None, "what an earlier load froze and nothing uses any more is freed"


def test_loading_the_code_location_freezes_its_definitions(tmp_path, monkeypatch, thawed_after) -> None:
    from chargeback_assets.definitions import defs

    monkeypatch.setenv("CCLOUD_API_KEY", "example-key")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(REPO_ROOT / "chargeback.example.yaml"))
    loaded = defs.load_fn()
    assert isinstance(loaded, dg.Definitions)
    assert not _collected(loaded)
