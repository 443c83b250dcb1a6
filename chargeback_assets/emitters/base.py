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
from typing import IO, Any, Protocol, TypeVar

from chargeback_assets.engine.money import ZERO
from chargeback_assets.redaction import scrub

K = TypeVar("K")
V = TypeVar("V")

TEAM_TAG = "team"
UNTAGGED = "UNTAGGED"
"""The team of a row whose identity and resource carry no `team` tag, in team rollups."""


class EmitterError(RuntimeError):
    """The destination refused the output (unwritable directory, rejected push): the emission failed.

    Its message is scrubbed of secrets: it may quote a destination's answer, which may echo credentials.
    """

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class Charge(Protocol):
    """What emitters output of a chargeback row: its dimension and amount (never its metadata).

    `ChargebackRow` has these fields; the emission stage passes storage's lighter `ChargebackFact`.
    """

    @property
    def ecosystem(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def env_id(self) -> str: ...
    @property
    def resource_id(self) -> str | None: ...
    @property
    def product_category(self) -> str: ...
    @property
    def product_type(self) -> str: ...
    @property
    def identity_id(self) -> str: ...
    @property
    def cost_type(self) -> str: ...
    @property
    def allocation_method(self) -> str | None: ...
    @property
    def allocation_detail(self) -> str | None: ...
    @property
    def amount(self) -> Decimal: ...


@dataclass(frozen=True, slots=True, eq=False)
class Labels:
    """What a reader needs of a row beside its ids: display names, identity type and tags.

    The stage makes one per (identity, resource) pair and its rows share it. It hashes and compares by
    identity, so emitters can cache per pair what they derive from it (rendered cells, a team).
    """

    resource_name: str = ""
    identity_name: str = ""
    identity_type: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    resource_type: str = ""


EmitRow = tuple[Charge, Labels]
"""A chargeback row and its labels (a plain pair: a large period has tens of thousands)."""

LineKey = tuple[str, str, str, str]
"""Which billing line a chargeback row shares: (env_id, resource_id, product_type, product_category)."""


@dataclass(frozen=True, slots=True)
class LineTotals:
    """A period's billing line(s) of one `LineKey`, summed: what a row's share of the line is a share of."""

    billed: Decimal
    quantity: Decimal
    list_cost: Decimal | None
    """Before any discount: the bill's `original_amount`, or `unit_price × quantity` for a line a cost model
    priced (its unit price is the list price). None when the bill does not say."""
    unit: str
    """The pricing unit the bill names (`GB`, `CKU-hour`), else the line's product type."""


@dataclass(frozen=True, slots=True)
class PeriodFacts:
    """What holds for a whole period beside its rows: the currency it is billed in, whether every day of it is
    settled (see `engine.models.is_settled`), whether a settled day of it was restated since it was last
    published, and, for emitters that ask (`wants_lines`), its billing lines' totals."""

    end: date
    """The day after the period's last (the period starts on the date `emit` is given)."""
    currency: str
    settled: bool
    restated: bool = False
    lines: Mapping[LineKey, LineTotals] = field(default_factory=dict)
    env_names: Mapping[str, str] = field(default_factory=dict)
    """Display names of the period's environments (also only for emitters that ask)."""


class Emitter(Protocol):
    wants_lines: bool
    """Whether `emit` reads `PeriodFacts.lines` and `env_names` (reading the bill costs a query per day)."""

    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow], facts: PeriodFacts) -> list[str]:
        """Write one period's rows, replacing an earlier emission of it; returns the outputs a reader opens
        (none when the period only becomes visible in `publish`)."""

    def publish(self, tenant_id: str) -> list[str]:
        """Make the emitted periods visible, where that is a separate step; returns what was published."""

    def retract(self, tenant_id: str, period: date) -> list[str]:
        """Withdraw what an earlier emission published for the period (it must no longer be read; `publish`
        makes that visible where publishing is a separate step); returns what was removed."""


class Memo(dict[K, V]):
    """A dict that computes a missing value once, from its key.

    A large period repeats a few hundred distinct label values over tens of thousands of rows: looking a
    known one up costs a dict subscript, with no Python call, which is what makes per-row rendering cheap.
    """

    def __init__(self, compute: Callable[[K], V]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: K) -> V:
        value = self[key] = self._compute(key)
        return value


def team_totals(rows: Iterable[EmitRow]) -> dict[tuple[str, str], Decimal] | None:
    """(team, cost type) -> exact sum, when any row carries a `team` tag; otherwise None (no rollup)."""
    by_labels: dict[tuple[Labels, str], Decimal] = {}  # rows share their Labels: look the team up per pair
    for row, labels in rows:
        key = (labels, row.cost_type)
        by_labels[key] = by_labels.get(key, ZERO) + row.amount
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    tagged = False
    for (labels, cost_type), amount in by_labels.items():
        team = labels.tags.get(TEAM_TAG)
        tagged = tagged or team is not None
        totals[(team or UNTAGGED, str(cost_type))] += amount
    return dict(sorted(totals.items())) if tagged else None


def inside(directory: Path, relative: str, what: str) -> Path:
    """`directory/relative`, refusing any path that resolves outside `directory` (`..`, absolute, links)."""
    base = directory.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise EmitterError(f"{what} {relative!r} is outside the output directory {base}")
    return target


def remove_output(path: Path) -> bool:
    """Remove one published file if it is there; whether it was."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise EmitterError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    return True


def write_atomically(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> None:
    """Write through a temporary file in the same directory, then rename: readers never see half a file.

    `write` gets a UTF-8 text stream that leaves line ends as written, or with `binary` a byte stream.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the output from the readers it is for
    except OSError as exc:
        raise EmitterError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        stream = os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="")
        with stream as out:
            write(out)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise EmitterError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def flag_text(value: bool) -> str:
    """A boolean cell or label value: `true` or `false`."""
    return "true" if value else "false"


def money_text(amount: Decimal) -> str:
    """Plain decimal text: never scientific notation, never a float."""
    return format(amount, "f")
