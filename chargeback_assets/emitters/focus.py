"""FOCUS output: the chargeback as a FOCUS 1.2 cost and usage dataset, one CSV file per tenant per period.

FOCUS (the FinOps Open Cost and Usage Specification) is what FinOps tools import. File:
`<output_dir>/<filename_template>` (fields as in the CSV emitter; default `focus_{tenant_id}_{date}.csv`),
RFC 4180, UTF-8, written to a temporary name and renamed. One row per chargeback row; columns `COLUMNS`.

What each column holds (the README's "FOCUS export" section says the same for users):

- BilledCost, EffectiveCost, ContractedCost: the row's amount. The bill is already net of the provider's
  discounts and there are no commitment purchases to amortize, so what was billed is what the row cost and
  what the contract priced it at.
- ListCost: the row's share of its billing line's cost before discounts (`LineTotals.list_cost`: the bill's
  `original_amount`, or a cost model's price), in proportion to the row's share of the line's cost; equal
  to BilledCost when the bill does not say (`x_ListCostSource` tells which).
- ChargeCategory: `Credit` for rows of a line with a negative cost (promotional credits), else `Usage`;
  a credit row has no PricingQuantity or PricingUnit, and its ListCost is its BilledCost, as FOCUS asks.
- PricingQuantity / PricingUnit: the row's share of its line's quantity, in the line's unit (FOCUS unit
  format: `CKU-hour` becomes `CKU-Hours`).
- InvoiceId: null; the bill's lines do not name the invoice they will be on.
- ChargePeriodStart/End: the period (a day, or the month for monthly aggregation); BillingPeriodStart/End:
  the calendar month it falls in (the provider invoices monthly). Timestamps are UTC, ISO 8601 with `Z`.
- SubAccountId/Name: the environment; BillingAccountId/Name: the tenant id.
- Tags: the row's custom tags (identity's, then resource's, `team` among them) as user-defined tags, and
  the identity as provider-defined tags prefixed `chargeback/`.
- `x_` columns: our own dimensions (ecosystem, product, identity, cost type, allocation, settled...).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from chargeback_assets.emitters.base import (
    TEAM_TAG,
    EmitRow,
    EmitterError,
    Labels,
    LineTotals,
    Memo,
    PeriodFacts,
    flag_text,
    inside,
    money_text,
    remove_output,
    write_atomically,
)
from chargeback_assets.emitters.csv import check_filename_template, csv_cell
from chargeback_assets.engine.money import ZERO, quantize
from chargeback_assets.validation import Text, checked, settings

FOCUS_VERSION = "1.2"
DEFAULT_FILENAME_TEMPLATE = "focus_{tenant_id}_{date}.csv"
TAG_PREFIX = "chargeback/"
"""The prefix of the provider-defined tags this export adds (FOCUS asks providers to prefix theirs)."""
QUANTITY_QUANTUM = Decimal("1E-10")
PROVIDERS = {"confluent_cloud": "Confluent"}
"""Who bills an ecosystem's costs (ProviderName, PublisherName, InvoiceIssuerName); an ecosystem not listed
is priced by the tenant's own cost model, and its name stands for the provider."""
SERVICE_CATEGORIES = {
    "KAFKA": ("Analytics", "Streaming Analytics"),
    "FLINK": ("Analytics", "Streaming Analytics"),
    "KSQL": ("Analytics", "Streaming Analytics"),
    "TABLEFLOW": ("Analytics", "Data Processing"),
    "CONNECT": ("Integration", "Other (Integration)"),
    "CLUSTER_LINK": ("Networking", "Other (Networking)"),
    "STREAM_GOVERNANCE": ("Management and Governance", "Other (Management and Governance)"),
    "SCHEMA_REGISTRY": ("Management and Governance", "Other (Management and Governance)"),
    "AUDIT_LOG": ("Security", "Security Posture Management"),
}
"""Product category -> FOCUS ServiceCategory and ServiceSubcategory; anything else is Other."""
OTHER_SERVICE = ("Other", "Other (Other)")

COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_TenantId",
    "x_Ecosystem",
    "x_ProductCategory",
    "x_ProductType",
    "x_IdentityId",
    "x_IdentityName",
    "x_IdentityType",
    "x_Team",
    "x_CostType",
    "x_AllocationMethod",
    "x_AllocationDetail",
    "x_ListCostSource",
    "x_Settled",
    "x_Restated",
)
HEADER_LINE = ",".join(COLUMNS) + "\r\n"


@settings(kw_only=True)
class FocusParams:
    """`params` of a focus emitter."""

    output_dir: Text
    filename_template: Annotated[Text, checked(check_filename_template)] = DEFAULT_FILENAME_TEMPLATE

    def build(self) -> FocusEmitter:
        return FocusEmitter(Path(self.output_dir), self.filename_template)


def timestamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


TIME_UNITS = {"year": "Years", "month": "Months", "day": "Days", "hour": "Hours", "minute": "Minutes"}


@functools.cache  # a bill names a few units, repeated on every row
def pricing_unit(unit: str) -> str:
    """The bill's unit in FOCUS's unit format: a unit per time is `<unit>-<plural time unit>` (Confluent's
    `CKU-hour` is `CKU-Hours`), and a product type standing in for a unit has its underscores as spaces."""
    base, dash, per = unit.rpartition("-")
    if dash and per.lower() in TIME_UNITS:
        return f"{base}-{TIME_UNITS[per.lower()]}"
    return unit.replace("_", " ")


def share(part: Decimal, whole: Decimal, of: Decimal) -> Decimal:
    """`of × part / whole`: a row's share (`part` of the line's `whole` cost) of another line total."""
    return of * part / whole if whole else ZERO


PairCells = dict[tuple[str, str | None, Labels], tuple[str, str, str]]
"""(identity id, resource id, labels) -> the pair's (ResourceId..ResourceType, Tags, x_IdentityId..x_Team)."""


@dataclass(frozen=True, slots=True)
class _LineCells:
    """What a row takes from its billing line, its cells already CSV text and joined in column order."""

    totals: LineTotals
    shares_list_cost: bool
    """Whether ListCost is the row's share of the line's list cost (else it is the row's BilledCost)."""
    credit: bool
    charge_category: str
    """ChargeCategory,ChargeClass"""
    charge_frequency: str
    provider: str
    unit_providers: str
    """PricingUnit,ProviderName,PublisherName"""
    service_sub_account: str
    """ServiceCategory,ServiceName,ServiceSubcategory,SubAccountId,SubAccountName"""
    products: str
    """x_Ecosystem,x_ProductCategory,x_ProductType"""
    list_cost_source: str


class FocusEmitter:
    wants_lines = True

    def __init__(self, output_dir: Path, filename_template: str = DEFAULT_FILENAME_TEMPLATE) -> None:
        problem = check_filename_template(filename_template)
        if problem:
            raise ValueError(f"filename_template {problem}")
        self.output_dir = output_dir
        self.filename_template = filename_template
        self._pairs: PairCells = {}
        """Kept from period to period: the stage gives a pair one `Labels` for all the days it emits."""

    def path_for(self, tenant_id: str, period: date) -> Path:
        name = self.filename_template.format(
            tenant_id=tenant_id, date=period.isoformat(), month=period.strftime("%Y-%m")
        )
        return inside(self.output_dir, name, "FOCUS file")

    def emit(self, tenant_id: str, period: date, rows: Sequence[EmitRow], facts: PeriodFacts) -> list[str]:
        if "," in facts.currency:
            raise EmitterError(
                f"{tenant_id} {period}: the bill mixes currencies ({facts.currency}); a FOCUS row has one "
                "BillingCurrency and nothing here converts between them"
            )
        path = self.path_for(tenant_id, period)
        write_atomically(
            path, lambda out: out.writelines(_Period(tenant_id, period, facts, self._pairs).lines(rows))
        )
        return [str(path)]

    def publish(self, tenant_id: str) -> list[str]:
        return []

    def retract(self, tenant_id: str, period: date) -> list[str]:
        path = self.path_for(tenant_id, period)
        return [str(path)] if remove_output(path) else []


class _Period:
    """One period's rows as FOCUS CSV lines, byte for byte what `csv.writer` writes for their cells.

    A large period has tens of thousands of rows but a few hundred billing lines and a few thousand
    (identity, resource) pairs: each line's and each pair's cells are rendered once, and a row costs its
    amounts and one string format (`csv.writer` over 44 cells a row took most of the export's time).
    """

    def __init__(self, tenant_id: str, period: date, facts: PeriodFacts, pairs: PairCells) -> None:
        self.tenant_id, self.period, self.facts, self._pairs = tenant_id, period, facts, pairs
        self._line: Memo[tuple[str, str, str, str, str], _LineCells | None] = Memo(self._line_cells)
        self._text: Memo[str, str] = Memo(csv_cell)

    def lines(self, rows: Sequence[EmitRow]) -> Iterator[str]:
        tenant, facts, text, pairs = csv_cell(self.tenant_id), self.facts, self._text, self._pairs
        period_start, period_end = timestamp(self.period), timestamp(facts.end)
        billing = f"{csv_cell(facts.currency)},{timestamp(month_after(self.period))}," + timestamp(
            self.period.replace(day=1)
        )
        flags = f"{flag_text(facts.settled)},{flag_text(facts.restated)}"
        yield HEADER_LINE
        for row, labels in rows:
            line = self._line[
                row.ecosystem, row.env_id, row.resource_id or "", row.product_type, row.product_category
            ]
            if line is None:
                key = (row.env_id, row.resource_id or "", row.product_type, row.product_category)
                raise EmitterError(
                    f"{self.tenant_id} {self.period}: no billing line {key} for the chargeback row of "
                    f"{row.identity_id}; the chargeback is older than the stored bill"
                )
            pair = (row.identity_id, row.resource_id, labels)
            cells = pairs.get(pair)
            if cells is None:
                cells = pairs[pair] = self._pair_cells(*pair)
            resource, tags, identity = cells
            amount = money_text(row.amount)
            if line.credit:
                list_cost, quantity = amount, ""
            else:
                totals = line.totals
                list_cost = (
                    money_text(quantize(share(row.amount, totals.billed, totals.list_cost)))
                    if line.shares_list_cost
                    else amount
                )
                quantity = format(
                    share(row.amount, totals.billed, totals.quantity).quantize(QUANTITY_QUANTUM), "f"
                )
            description = csv_cell(
                f"{row.product_category} {row.product_type} charged to {row.identity_id} "
                f"({row.allocation_method or 'unallocated'})"
            )
            yield (
                f"{amount},{tenant},{tenant},{billing},{line.charge_category},{description},"
                f"{line.charge_frequency},{period_end},{period_start},{amount},{amount},,{line.provider},"
                f"{list_cost},{quantity},{line.unit_providers},{resource},{line.service_sub_account},{tags},"
                f"{tenant},{line.products},{identity},{text[str(row.cost_type)]},"
                f"{text[row.allocation_method or '']},{text[row.allocation_detail or '']},"
                f"{line.list_cost_source},{flags}\r\n"
            )

    def _line_cells(self, key: tuple[str, str, str, str, str]) -> _LineCells | None:
        """None for a line the period's bill does not have."""
        ecosystem, env_id, resource_id, product_type, product_category = key
        totals = self.facts.lines.get((env_id, resource_id, product_type, product_category))
        if totals is None:
            return None
        credit = totals.billed < 0
        shares_list_cost = not (credit or totals.list_cost is None or not totals.billed)
        provider = csv_cell(PROVIDERS.get(ecosystem, ecosystem))
        category, subcategory = SERVICE_CATEGORIES.get(product_category, OTHER_SERVICE)
        sub_account = (env_id, self.facts.env_names.get(env_id, env_id) if env_id else "")
        return _LineCells(
            totals=totals,
            shares_list_cost=shares_list_cost,
            credit=credit,
            charge_category="Credit," if credit else "Usage,",
            charge_frequency="One-Time" if credit else "Usage-Based",
            provider=provider,
            unit_providers=f"{'' if credit else csv_cell(pricing_unit(totals.unit))},{provider},{provider}",
            service_sub_account=_joined(category, product_category, subcategory, *sub_account),
            products=_joined(ecosystem, product_category, product_type),
            list_cost_source="bill" if shares_list_cost else "billed_cost",
        )

    def _pair_cells(self, identity_id: str, resource_id: str | None, labels: Labels) -> tuple[str, str, str]:
        resource = (
            (resource_id, labels.resource_name or resource_id, labels.resource_type or "unknown")
            if resource_id
            else ("", "", "")
        )
        identity = (identity_id, labels.identity_name, labels.identity_type, labels.tags.get(TEAM_TAG, ""))
        return _joined(*resource), csv_cell(self._tags(identity_id, labels)), _joined(*identity)

    def _tags(self, identity_id: str, labels: Labels) -> str:
        """User-defined tags as they are, and the identity as provider-defined tags (prefixed)."""
        tags = labels.tags
        reserved = sorted(key for key in tags if key.startswith(TAG_PREFIX))
        if reserved:
            raise EmitterError(
                f"{self.tenant_id} {self.period}: custom tag key(s) {reserved} use the prefix {TAG_PREFIX!r} "
                "that the FOCUS export reserves for its own tags; rename them"
            )
        ours = {
            f"{TAG_PREFIX}identity_id": identity_id,
            f"{TAG_PREFIX}identity_name": labels.identity_name,
            f"{TAG_PREFIX}identity_type": labels.identity_type,
        }
        return json.dumps({**dict(sorted(tags.items())), **ours}, ensure_ascii=False, separators=(",", ":"))


def _joined(*cells: str) -> str:
    return ",".join(map(csv_cell, cells))
