"""CSV output: one file per tenant per period, for spreadsheets and finance tools.

File: `<output_dir>/<filename_template>`, the template using `{tenant_id}`, `{date}` (the period's ISO date;
the 1st for monthly aggregation) and `{month}` (YYYY-MM); default `{tenant_id}_{date}.csv`. Columns, in
order: `COLUMNS` below. Amounts are exact decimal text; `tags` is a JSON object with sorted keys
(`{"cost.center":"4;2","team":"a=b"}`, `{}` without tags): tag values may hold `;`, `=` and `,`, so no
delimiter-joined text could be split back safely. `currency` is the ISO code the period is billed in;
`settled` is `true` when every day of the period is older than the tenant's `settle_days` allow the provider
to revise, `false` while it is provisional; `restated` is `true` when a settled day's bill changed after it
was published (the file then holds the restated rows). Text cells that a spreadsheet would run as a formula
(starting with `= + - @`, also after leading blanks or control characters, which spreadsheets skip, or with a
tab or carriage return) get a leading `'`.
When any row carries a `team` tag, `<file stem>_teams.csv` holds the (date, tenant_id, team, cost_type)
sums, untagged rows under team `UNTAGGED`. Files are RFC 4180 (CRLF line ends), UTF-8, written to a
temporary name and renamed.
"""

from __future__ import annotations

import csv
import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Annotated

from chargeback_assets.emitters.base import (
    EmitRow,
    Labels,
    Memo,
    PeriodFacts,
    flag_text,
    inside,
    money_text,
    remove_output,
    team_totals,
    write_atomically,
)
from chargeback_assets.validation import Text, checked, settings

COLUMNS = (
    "date",
    "tenant_id",
    "ecosystem",
    "env_id",
    "resource_id",
    "resource_name",
    "product_category",
    "product_type",
    "identity_id",
    "identity_name",
    "identity_type",
    "cost_type",
    "amount",
    "currency",
    "allocation_method",
    "allocation_detail",
    "tags",
    "settled",
    "restated",
)
TEAM_COLUMNS = ("date", "tenant_id", "team", "cost_type", "amount", "currency", "settled", "restated")
DEFAULT_FILENAME_TEMPLATE = "{tenant_id}_{date}.csv"
TEMPLATE_FIELDS = frozenset({"tenant_id", "date", "month"})
FORMULA = re.compile(r"[\t\r]|[\s\x00-\x1f\x7f-\x9f]*[=+\-@]")
"""How a cell a spreadsheet would run as a formula starts (matched at the start of the cell)."""
_NEEDS_QUOTES = re.compile('[,"\r\n]')


def check_filename_template(template: str) -> str | None:
    """What is wrong with a filename template (unknown fields, a path leaving output_dir), or None."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"is not a valid template: {exc}"
    unknown = sorted(set(fields) - TEMPLATE_FIELDS)
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {{tenant_id}}, {{date}}, {{month}}"
    for flavour in (PurePosixPath, PureWindowsPath):
        path = flavour(template)
        if path.is_absolute() or path.anchor or ".." in path.parts:
            return "must be a relative path inside output_dir"
    if not template.strip() or template.endswith(("/", "\\")):
        return "must name a file"
    return None


@settings(kw_only=True)
class CsvParams:
    """`params` of a csv emitter."""

    output_dir: Text
    filename_template: Annotated[Text, checked(check_filename_template)] = DEFAULT_FILENAME_TEMPLATE

    def build(self) -> CsvEmitter:
        return CsvEmitter(Path(self.output_dir), self.filename_template)


def tags_text(tags: Mapping[str, str]) -> str:
    """The tags as one JSON object, keys sorted, no spaces: one cell, stable across runs, and read back
    exactly whatever the values hold (`;`, `=`, quotes)."""
    return json.dumps(dict(sorted(tags.items())), ensure_ascii=False, separators=(",", ":"))


def neutralize(text: str) -> str:
    """A cell a spreadsheet shows as text: a formula start (see `FORMULA`) is escaped with a leading `'`."""
    return "'" + text if FORMULA.match(text) else text


class CsvEmitter:
    wants_lines = False

    def __init__(self, output_dir: Path, filename_template: str = DEFAULT_FILENAME_TEMPLATE) -> None:
        problem = check_filename_template(filename_template)
        if problem:
            raise ValueError(f"filename_template {problem}")
        self.output_dir = output_dir
        self.filename_template = filename_template
        self._lines = _LineRenderer()

    def path_for(self, tenant_id: str, period: date) -> Path:
        name = self.filename_template.format(
            tenant_id=tenant_id, date=period.isoformat(), month=period.strftime("%Y-%m")
        )
        return inside(self.output_dir, name, "CSV file")

    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow], facts: PeriodFacts) -> list[str]:
        path = self.path_for(tenant_id, period)
        day = period.isoformat()
        period_cells = (neutralize(facts.currency), flag_text(facts.settled), flag_text(facts.restated))
        write_atomically(path, lambda out: self._write_rows(out, day, rows, period_cells))
        teams_path = self._teams_path(path)
        totals = team_totals(rows)
        if totals is None:
            remove_output(teams_path)  # a rollup of an earlier emission, when team tags have since gone
            return [str(path)]
        tenant = neutralize(tenant_id)
        write_atomically(
            teams_path,
            lambda out: write_table(
                out,
                TEAM_COLUMNS,
                [
                    (day, tenant, neutralize(team), cost_type, money_text(amount), *period_cells)
                    for (team, cost_type), amount in totals.items()
                ],
            ),
        )
        return [str(path), str(teams_path)]

    def publish(self, tenant_id: str) -> list[str]:
        return []

    def retract(self, tenant_id: str, period: date) -> list[str]:
        path = self.path_for(tenant_id, period)
        return [str(p) for p in (path, self._teams_path(path)) if remove_output(p)]

    @staticmethod
    def _teams_path(path: Path) -> Path:
        return path.with_name(f"{path.stem}_teams.csv")

    def _write_rows(
        self, out: IO[str], day: str, rows: Sequence[EmitRow], period_cells: tuple[str, str, str]
    ) -> None:
        write_table(out, COLUMNS, ())
        out.writelines(self._lines.lines(day, rows, period_cells))


class _LineRenderer:
    """Rows as CSV lines, each cell rendered once per distinct text or per `Labels`, for every period.

    The lines are what `csv.writer` writes for the same cells (see `csv_cell`). A large period has tens of
    thousands of rows but a few thousand distinct cells, so a row costs one string format.
    """

    def __init__(self) -> None:
        self._text: Memo[str, str] = Memo(lambda value: csv_cell(neutralize(value)))
        self._plain: Memo[str, str] = Memo(csv_cell)
        self._labelled: Memo[Labels, tuple[str, str, str]] = Memo(self._label_cells)

    def _label_cells(self, labels: Labels) -> tuple[str, str, str]:
        """resource_name; identity_name,identity_type; tags."""
        text = self._text
        return (
            text[labels.resource_name],
            text[labels.identity_name] + "," + text[labels.identity_type],
            text[tags_text(labels.tags)],
        )

    def lines(self, day: str, rows: Sequence[EmitRow], period_cells: tuple[str, str, str]) -> Iterator[str]:
        """`period_cells`: the period's (currency, settled, restated) cells, already neutralized."""
        text, plain, labelled = self._text, self._plain, self._labelled
        currency, settled, restated = (csv_cell(cell) for cell in period_cells)
        for r, labels in rows:
            resource_name, identity_name_type, tags = labelled[labels]
            yield (
                f"{day},{text[r.tenant_id]},{text[r.ecosystem]},{text[r.env_id]},{text[r.resource_id or '']},"
                f"{resource_name},{text[r.product_category]},{text[r.product_type]},{text[r.identity_id]},"
                f"{identity_name_type},{plain[str(r.cost_type)]},{money_text(r.amount)},{currency},"
                f"{text[r.allocation_method or '']},{text[r.allocation_detail or '']},{tags},"
                f"{settled},{restated}\r\n"
            )


def csv_cell(value: str) -> str:
    """`value` as `csv.writer` (RFC 4180, minimal quoting) writes it in a row of several cells."""
    if _NEEDS_QUOTES.search(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def write_table(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; also quotes cells holding \r or \n
    writer.writerow(header)
    writer.writerows(rows)
