"""Importable targets for the custom allocator/resolver loading tests."""

from chargeback_assets.engine.allocation import Terminal


def to_platform_team(ctx):
    return Terminal("team-platform").allocate(ctx)


def two_args(ctx, extra):
    return None


class AllocatorClass:
    def __call__(self, ctx):
        return None


instance_allocator = AllocatorClass()
not_callable = 42


def resolver(line, inventory, usage):
    return None


def allocator_down(ctx):
    """An allocator override that always raises, as a broken custom allocator does."""
    raise RuntimeError("allocator down")
