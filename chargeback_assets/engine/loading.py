"""Custom allocators and identity resolvers named in config as `package.module:callable`.

Loaded when the config is loaded (and again, from Python's module cache, when a tenant's runtime is built),
so a typo fails at once with a message naming the key and what is wrong, instead of failing line by line
deep inside a calculation.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

ALLOCATOR_ARITY = 1
"""An allocator is called as `allocator(ctx: AllocationContext) -> AllocationResult`."""

RESOLVER_ARITY = 3
"""A resolver is called as `resolver(line, inventory, usage) -> IdentityResolution`."""


class LoadError(ValueError):
    """A `module:callable` path could not be turned into a usable callable; `reason` says why."""

    def __init__(self, what: str, path: str, reason: str) -> None:
        super().__init__(f"{what} {path!r}: {reason}")
        self.reason = reason


def _accepts_positional(func: Callable[..., Any], count: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return True  # builtins without introspectable signatures: trust them
    positional = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
        elif (
            parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is inspect.Parameter.empty
        ):
            return False
    required = sum(
        1
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.default is inspect.Parameter.empty
    )
    return required <= count <= positional


def load_callable(path: str, *, what: str, arity: int) -> Callable[..., Any]:
    """Import `module:attr`, reject classes and non-callables, and check it takes `arity` positional args."""
    if not _PATH.match(path):
        raise LoadError(what, path, "must be 'package.module:callable'")
    module_name, attribute = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoadError(what, path, f"cannot import module {module_name!r} ({exc})") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError as exc:
        raise LoadError(what, path, f"module {module_name!r} has no attribute {attribute!r}") from exc
    if inspect.isclass(target):
        raise LoadError(what, path, "is a class; give a function or a callable instance")
    if not callable(target):
        raise LoadError(what, path, "is not callable")
    if not _accepts_positional(target, arity):
        raise LoadError(what, path, f"must accept exactly {arity} positional argument(s)")
    return target


def load_allocator(path: str) -> Callable[..., Any]:
    return load_callable(path, what="allocator override", arity=ALLOCATOR_ARITY)


def load_resolver(path: str) -> Callable[..., Any]:
    return load_callable(path, what="identity resolution override", arity=RESOLVER_ARITY)
