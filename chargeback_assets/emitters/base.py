"""What every emitter receives and promises: labelled chargeback rows in, one published output per period.

Emitters know nothing of Dagster or of the database: the emission stage reads the rows, resolves names and
tags from the stored inventory, and hands each emitter one period (a day, or the 1st of a month for monthly
aggregation) at a time. An emitter writes what it can for a period in `emit` and makes its output visible in
`publish` (a per-date file is visible at once; the OpenMetrics file is rebuilt once per run). Anything that
goes wrong at the destination is an `EmitterError`, which the stage records as a failed emission.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Protocol

from chargeback_assets.engine.models import ChargebackRow
from chargeback_assets.engine.money import ZERO

TEAM_TAG = "team"
UNTAGGED = "UNTAGGED"
"""The team of a row whose identity and resource carry no `team` tag, in team rollups."""


class EmitterError(RuntimeError):
    """The destination refused the output (unwritable directory, rejected push): the emission failed."""


@dataclass(frozen=True, slots=True)
class EmitRow:
    """A chargeback row with what a reader needs beside the ids: display names, identity type and tags."""

    row: ChargebackRow
    resource_name: str = ""
    identity_name: str = ""
    identity_type: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


class Emitter(Protocol):
    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow]) -> list[str]:
        """Write one period's rows, replacing an earlier emission of it; returns what was written."""

    def publish(self, tenant_id: str) -> list[str]:
        """Make the emitted periods visible, where that is a separate step; returns what was published."""


def tags_text(tags: Mapping[str, str]) -> str:
    """`k=v;k=v` sorted by key: one cell, stable across runs."""
    return ";".join(f"{key}={tags[key]}" for key in sorted(tags))


def team_totals(rows: Iterable[EmitRow]) -> dict[tuple[str, str], Decimal] | None:
    """(team, cost type) -> exact sum, when any row carries a `team` tag; otherwise None (no rollup)."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    tagged = False
    for item in rows:
        team = item.tags.get(TEAM_TAG)
        tagged = tagged or team is not None
        totals[(team or UNTAGGED, str(item.row.cost_type))] += item.row.amount
    return dict(sorted(totals.items())) if tagged else None


def inside(directory: Path, relative: str, what: str) -> Path:
    """`directory/relative`, refusing any path that resolves outside `directory` (`..`, absolute, links)."""
    base = directory.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise EmitterError(f"{what} {relative!r} is outside the output directory {base}")
    return target


def write_atomically(path: Path, write: Callable[[IO[str]], None]) -> None:
    """Write through a temporary file in the same directory, then rename: readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the output from the readers it is for
    except OSError as exc:
        raise EmitterError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            write(out)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise EmitterError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def money_text(amount: Decimal) -> str:
    """Plain decimal text: never scientific notation, never a float."""
    return format(amount, "f")
