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
    PeriodFacts,
    flag_text,
    inside,
    money_text,
    remove_output,
    write_atomically,
)
from chargeback_assets.emitters.csv import check_filename_template, write_table
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


class FocusEmitter:
    wants_lines = True

    def __init__(self, output_dir: Path, filename_template: str = DEFAULT_FILENAME_TEMPLATE) -> None:
        problem = check_filename_template(filename_template)
        if problem:
            raise ValueError(f"filename_template {problem}")
        self.output_dir = output_dir
        self.filename_template = filename_template
        self._tag_cells: dict[tuple[str, Labels], str] = {}
        """(identity id, labels) -> the Tags cell: a large period has tens of thousands of rows but a few
        thousand (identity, resource) pairs, each with its one `Labels`."""

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
        cells = list(self._cells(tenant_id, period, rows, facts))
        write_atomically(path, lambda out: write_table(out, COLUMNS, cells))
        return [str(path)]

    def publish(self, tenant_id: str) -> list[str]:
        return []

    def retract(self, tenant_id: str, period: date) -> list[str]:
        path = self.path_for(tenant_id, period)
        return [str(path)] if remove_output(path) else []

    def _cells(
        self, tenant_id: str, period: date, rows: Sequence[EmitRow], facts: PeriodFacts
    ) -> Iterator[tuple[str, ...]]:
        fixed = (facts.currency, timestamp(month_after(period)), timestamp(period.replace(day=1)))
        period_cells = (timestamp(facts.end), timestamp(period))
        settled, restated = flag_text(facts.settled), flag_text(facts.restated)
        for row, labels in rows:
            key = (row.env_id, row.resource_id or "", row.product_type, row.product_category)
            line = facts.lines.get(key)
            if line is None:
                raise EmitterError(
                    f"{tenant_id} {period}: no billing line {key} for the chargeback row of "
                    f"{row.identity_id}; the chargeback is older than the stored bill"
                )
            credit = line.billed < 0
            list_cost, list_source = self._list_cost(row.amount, line, credit)
            provider = PROVIDERS.get(row.ecosystem, row.ecosystem)
            category, subcategory = SERVICE_CATEGORIES.get(row.product_category, OTHER_SERVICE)
            amount = money_text(row.amount)
            team = labels.tags.get(TEAM_TAG, "")
            yield (
                amount,
                tenant_id,
                tenant_id,
                *fixed,
                "Credit" if credit else "Usage",
                "",
                f"{row.product_category} {row.product_type} charged to {row.identity_id} "
                f"({row.allocation_method or 'unallocated'})",
                "One-Time" if credit else "Usage-Based",
                *period_cells,
                amount,
                amount,
                "",
                provider,
                money_text(list_cost),
                "" if credit else format(self._quantity(row.amount, line), "f"),
                "" if credit else pricing_unit(line.unit),
                provider,
                provider,
                row.resource_id or "",
                (labels.resource_name or row.resource_id or "") if row.resource_id else "",
                (labels.resource_type or "unknown") if row.resource_id else "",
                category,
                row.product_category,
                subcategory,
                row.env_id,
                facts.env_names.get(row.env_id, row.env_id) if row.env_id else "",
                self._tags(tenant_id, period, row.identity_id, labels),
                tenant_id,
                row.ecosystem,
                row.product_category,
                row.product_type,
                row.identity_id,
                labels.identity_name,
                labels.identity_type,
                team,
                str(row.cost_type),
                row.allocation_method or "",
                row.allocation_detail or "",
                list_source,
                settled,
                restated,
            )

    @staticmethod
    def _list_cost(amount: Decimal, line: LineTotals, credit: bool) -> tuple[Decimal, str]:
        if credit or line.list_cost is None or not line.billed:
            return amount, "billed_cost"
        return quantize(share(amount, line.billed, line.list_cost)), "bill"

    @staticmethod
    def _quantity(amount: Decimal, line: LineTotals) -> Decimal:
        return share(amount, line.billed, line.quantity).quantize(QUANTITY_QUANTUM)

    def _tags(self, tenant_id: str, period: date, identity_id: str, labels: Labels) -> str:
        """User-defined tags as they are, and the identity as provider-defined tags (prefixed)."""
        cell = self._tag_cells.get((identity_id, labels))
        if cell is None:
            cell = self._tag_cells[identity_id, labels] = self._render_tags(
                tenant_id, period, identity_id, labels
            )
        return cell

    @staticmethod
    def _render_tags(tenant_id: str, period: date, identity_id: str, labels: Labels) -> str:
        tags = labels.tags
        reserved = sorted(key for key in tags if key.startswith(TAG_PREFIX))
        if reserved:
            raise EmitterError(
                f"{tenant_id} {period}: custom tag key(s) {reserved} use the prefix {TAG_PREFIX!r} that the "
                "FOCUS export reserves for its own tags; rename them"
            )
        ours = {
            f"{TAG_PREFIX}identity_id": identity_id,
            f"{TAG_PREFIX}identity_name": labels.identity_name,
            f"{TAG_PREFIX}identity_type": labels.identity_type,
        }
        return json.dumps({**dict(sorted(tags.items())), **ours}, ensure_ascii=False, separators=(",", ":"))
