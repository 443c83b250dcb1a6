"""The queries a generic metrics tenant issues, built from its configured PromQL.

Keys: `cost_<name>` prices a cost type, `alloc_<name>` splits a usage_ratio cost type, `discovery` finds
identities. None has a `resource_label`: a generic tenant prices one cluster, so there is no filter to
inject and a `{}` in a configured query is simply removed. The metrics source evaluates each step at its end
minus 1 ms: a storage query should be an instant gauge (sampled once per step), a network or allocation
query should measure one step, e.g. `sum(increase(bytes_total[$step]))`.
"""

from __future__ import annotations

from chargeback_assets.ecosystems.generic_metrics.chains import allocation_key
from chargeback_assets.ecosystems.generic_metrics.settings import GenericCostType
from chargeback_assets.ecosystems.identity_source_settings import IdentitySourceSettings
from chargeback_assets.engine.models import MetricQuery

DISCOVERY_KEY = "discovery"


def cost_key(cost_type_name: str) -> str:
    return f"cost_{cost_type_name}"


def cost_query(cost_type: GenericCostType) -> MetricQuery | None:
    """The query measuring a cost type's quantity; None for a fixed quantity."""
    query = cost_type.cost_quantity.query
    return None if query is None else MetricQuery(cost_key(cost_type.name), query, ())


def allocation_query(cost_type: GenericCostType) -> MetricQuery | None:
    """The query splitting a usage_ratio cost type by `allocation_label`; None for even_split."""
    if cost_type.allocation_query is None or cost_type.allocation_label is None:
        return None
    label = cost_type.allocation_label
    return MetricQuery(
        allocation_key(cost_type.name), cost_type.allocation_query, (label,), subject_label=label
    )


def discovery_query(source: IdentitySourceSettings) -> MetricQuery | None:
    """The query whose `label` values are the tenant's principals; None when identities are only static."""
    if not source.uses_prometheus or source.discovery_query is None:
        return None
    return MetricQuery(DISCOVERY_KEY, source.discovery_query, (source.label,), subject_label=source.label)
