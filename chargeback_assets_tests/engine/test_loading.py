import pytest

from chargeback_assets.engine.loading import LoadError, load_allocator, load_resolver

from .builders import context

MODULE = "chargeback_assets_tests.engine.custom_callables"


def test_a_custom_allocator_is_loaded_and_used() -> None:
    allocator = load_allocator(f"{MODULE}:to_platform_team")
    [row] = allocator(context("9.99")).rows
    assert (row.identity_id, str(row.amount)) == ("team-platform", "9.99")


def test_callable_instances_and_resolvers_load() -> None:
    assert callable(load_allocator(f"{MODULE}:instance_allocator"))
    assert callable(load_resolver(f"{MODULE}:resolver"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"{MODULE}.to_platform_team", "must be 'package.module:callable'"),
        ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
        (f"{MODULE}:missing", "has no attribute 'missing'"),
        (f"{MODULE}:AllocatorClass", "is a class"),
        (f"{MODULE}:not_callable", "is not callable"),
        (f"{MODULE}:two_args", "exactly 1 positional"),
    ],
)
def test_bad_allocator_paths_say_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(LoadError, match=message) as error:
        load_allocator(path)
    assert path in str(error.value)


def test_resolver_arity_is_checked() -> None:
    with pytest.raises(LoadError, match="exactly 3 positional"):
        load_resolver(f"{MODULE}:to_platform_team")
