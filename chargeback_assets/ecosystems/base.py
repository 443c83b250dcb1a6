"""What an ecosystem provides to the graph: a cost source, an inventory, metric queries and product handlers.

An ecosystem is a package under `ecosystems/`; adding one touches no core file except the registry entry in
`ecosystems/__init__.py`. Nothing here imports Dagster or storage: the asset layer calls these and persists
what they return.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import orjson
import requests

from chargeback_assets.engine.allocation import Allocator
from chargeback_assets.engine.inventory import InventoryView
from chargeback_assets.engine.models import (
    BillingLine,
    Identity,
    IdentityResolution,
    MetricQuery,
    MetricRow,
    Resource,
    ResourceUsage,
    UsageRecord,
    Window,
)
from chargeback_assets.redaction import scrub

if TYPE_CHECKING:
    from chargeback_assets.ecosystems.retry import RetryBudget


class SourceError(Exception):
    """A billing, inventory or metrics source failed; its message names tenant, source and host, no secret
    (it is scrubbed here, so server-provided text quoted in it cannot carry one either).

    `transient` says the fault was one that passes (a 5xx, a timeout, a rate limit): raised by one attempt
    it asks the retry layer for another, and surfacing from a client it means the run's retry budget or the
    client's attempt cap ran out, not that the source refused us for good. `host` is where the source lives
    (`scheme://host:port`, see `origin`). `retry_after` is the wait in seconds the server asked for, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        tenant: str = "",
        source: str = "",
        host: str = "",
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(scrub(message))
        self.tenant = tenant
        self.source = source
        self.host = host
        self.transient = transient
        self.retry_after = retry_after


def origin(url: str) -> str:
    """`scheme://host:port` of a URL, the port spelled out: what an error may say about where a source is.

    Credentials in the URL (`user:pass@`), its path and its query are left out, so nothing secret a user put
    in a URL reaches an error or a log.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def json_body(response: requests.Response) -> Any:
    """The response's decoded JSON body; raises ValueError for a body that is not JSON, as `.json()` does.

    orjson decodes it first: a 30-day backfill reads hundreds of megabytes of range-query replies, and the
    standard decoder was a third of the usage step's CPU. What orjson refuses and Python's decoder accepts
    (NaN, infinities, numbers too large for a double, escaped lone surrogates, a byte-order mark, a body not
    in UTF-8) goes to `response.json()`. One difference stays: an integer outside 64 bits (beyond
    18446744073709551615 or below -9223372036854775808) comes back as the nearest float where Python's
    decoder keeps every digit. None of the APIs read here sends one: amounts are decimals far below it, and
    Prometheus sends its samples as strings. Finding one would mean scanning every body for long digit runs,
    four times slower than decoding it.
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def lone_surrogate_in(response_text: bytes, body: Any) -> str | None:
    """`lone_surrogate` of a decoded body, skipping the walk when its raw text escapes no surrogate at all."""
    if b"\\ud" not in response_text and b"\\uD" not in response_text:
        return None
    return lone_surrogate(body)


def lone_surrogate(body: Any, path: str = "$") -> str | None:
    """Where in a decoded JSON body a string (key or value) holds an unpaired UTF-16 surrogate, or None.

    JSON may escape one (`"\\ud800"`) and Python decodes it into a `str` that no UTF-8 encoder accepts, so a
    display name like that would fail much later, in the SQLite write or an output file, with no word of
    which source or record it came from. The caller refuses the response at the source instead, naming
    this path.
    """
    if isinstance(body, str):
        return path if _SURROGATE.search(body) else None
    if isinstance(body, dict):
        for key, value in body.items():
            where = f"{path}.{key}"
            if _SURROGATE.search(key):
                return where
            found = lone_surrogate(value, where)
            if found:
                return found
    elif isinstance(body, list):
        for index, value in enumerate(body):
            found = lone_surrogate(value, f"{path}[{index}]")
            if found:
                return found
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
LONE_SURROGATE = (
    "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), which is not Unicode text; the record "
    "must be corrected at the source"
)


class IncompleteBilling(SourceError):
    """Some days could not be priced; `lines` holds the days that could, so they are still written."""

    def __init__(
        self, message: str, *, tenant: str, source: str, lines: list[BillingLine], failed_days: Sequence[date]
    ) -> None:
        super().__init__(message, tenant=tenant, source=source)
        self.lines = lines
        self.failed_days = tuple(failed_days)


class CostSource(Protocol):
    def gather(self, start: date, end: date) -> Iterable[BillingLine]:
        """Billing lines whose period starts in `[start, end)` (UTC days). Raises SourceError."""
        ...


class FetchedDays(Protocol):
    """A bill's rows as fetched, not yet read into lines (what `RawCostSource.fetch_rows` returns)."""

    digests: Mapping[date, str] | None
    """A digest of each requested day's raw rows, when a day's lines depend on its own rows alone; else
    None."""

    def lines(self, days: Iterable[date] | None = None) -> list[BillingLine]:
        """The lines of `days` (all of them when None; `days` needs `digests`)."""
        ...


@runtime_checkable
class RawCostSource(CostSource, Protocol):
    """A cost source whose rows can be fetched first and read into lines per day later, so that the
    billing-change sensor reads only the days whose rows changed (stages/billing.py)."""

    def fetch_rows(self, start: date, end: date) -> FetchedDays:
        """The rows of `[start, end)`. Raises SourceError."""
        ...


@dataclass(slots=True)
class InventoryGather:
    """One gather of a tenant's inventory.

    `complete` is false when any endpoint failed: no deletion may follow from an incomplete gather.
    `observed_types` names the resource types whose every endpoint succeeded (deletion authority per type).
    """

    resources: list[Resource] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    observed_types: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors


class InventorySource(Protocol):
    def gather(self) -> InventoryGather: ...


class MetricsSource(Protocol):
    def query_range(
        self, query: MetricQuery, window: Window, step_seconds: int, resource_id: str | None
    ) -> list[MetricRow]:
        """Rows for `window`, half-open: a sample on `window.end` is not included. Raises SourceError."""
        ...

    def usage_by_day(
        self, query: MetricQuery, window: Window, step_seconds: int, resource_id: str
    ) -> dict[date, list[UsageRecord]]:
        """The usage `summarize_usage` (ecosystems/prometheus.py) gives for each UTC day's rows of
        `query_range`, for the days that have any. Raises SourceError."""
        ...


class ProductHandler(Protocol):
    """Identity resolution and allocation for the product types of one service (kafka, connector, ...)."""

    service_type: str
    product_types: frozenset[str]

    def metric_queries(self, product_type: str) -> Sequence[MetricQuery]: ...

    def resolve(
        self, line: BillingLine, inventory: InventoryView, usage: ResourceUsage | None
    ) -> IdentityResolution:
        """Who the line's resource can be charged to in the window `inventory` covers.

        It must depend on the line only through its resource (`resource_id`, and the tenant): the lines of
        one resource in one window are resolved once and share the result, which nothing may change.
        """
        ...

    def allocator(self, product_type: str) -> Allocator: ...


@dataclass(frozen=True, slots=True)
class TopicOverlay:
    """A tenant's topic attribution, when its ecosystem offers one and the tenant enabled it.

    `queries` are by topic metric key (engine/topics.py: topic_bytes_in, ...); each groups by the cluster
    (`resource_label`) and the topic (`subject_label`). `mapping(product_type)` is how a line of that type is
    split over topics, None for lines that are not a Kafka cluster's.
    """

    queries: Sequence[MetricQuery]
    mapping: Callable[[str], str | None]
    excluded: Callable[[str], bool]
    missing_metrics_behavior: str


@dataclass(slots=True)
class EcosystemRuntime:
    """Everything one tenant needs at run time, built from its validated settings.

    `budget` is the run's retry budget its HTTP clients share; cancelling it stops their retries at once.
    """

    cost_source: CostSource
    inventory: InventorySource
    metrics: MetricsSource | None
    handlers: Sequence[ProductHandler]
    fallback_allocator: Allocator | None
    budget: RetryBudget
    metrics_step_seconds: int = 3600
    topics: TopicOverlay | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def handler_for(self, product_type: str) -> ProductHandler | None:
        for handler in self.handlers:
            if product_type in handler.product_types:
                return handler
        return None

    def close(self) -> None:
        for close in self.closers:
            close()


class Ecosystem(Protocol):
    """A kind of tenant: the model of its `plugin_settings` and how to build its runtime from them."""

    name: str
    settings: type
    """The settings model `plugin_settings` is validated as."""
    service_types: frozenset[str]
    """The keys `identity_resolution_overrides` may use."""

    def product_types(self, settings: Any) -> frozenset[str]:
        """The product types its handlers own: the keys `allocator_overrides` may use."""
        ...

    def build(self, tenant_name: str, tenant_id: str, settings: Any, budget: RetryBudget) -> EcosystemRuntime:
        """The tenant's runtime; every HTTP client in it retries within `budget`; no network call yet."""
        ...
