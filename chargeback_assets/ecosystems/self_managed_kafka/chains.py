"""Allocation chains of the self-managed Kafka product types (one screen, read top to bottom).

Compute and storage are shared infrastructure: split evenly between the principals that used the cluster
that day, else between its configured identities. Network is metered per principal: split by bytes moved,
else evenly between configured identities. Whatever nobody can be charged for goes to UNALLOCATED.
"""

from __future__ import annotations

from collections.abc import Mapping

from chargeback_assets.ecosystems.generic_metrics.chains import metrics_derived, resource_active, usage_of
from chargeback_assets.ecosystems.self_managed_kafka.cost_model import (
    COMPUTE,
    NETWORK_EGRESS,
    NETWORK_INGRESS,
    STORAGE,
)
from chargeback_assets.ecosystems.self_managed_kafka.queries import (
    BYTES_IN_PER_PRINCIPAL,
    BYTES_OUT_PER_PRINCIPAL,
)
from chargeback_assets.engine.allocation import Chain, EvenSplit, Terminal, UsageRatio, chain
from chargeback_assets.engine.models import UNALLOCATED, CostType

INFRASTRUCTURE = chain(
    EvenSplit(metrics_derived, CostType.USAGE, None),
    EvenSplit(resource_active, CostType.SHARED, "no_active_identities_located"),
    Terminal(UNALLOCATED, CostType.SHARED, "no_identities_located"),
)


def _network(metric_key: str) -> Chain:
    return chain(
        UsageRatio(usage_of(metric_key)),
        EvenSplit(resource_active, CostType.SHARED, "no_metrics_located"),
        Terminal(UNALLOCATED, CostType.SHARED, "no_identities_located"),
    )


CHAINS: Mapping[str, Chain] = {
    COMPUTE: INFRASTRUCTURE,
    STORAGE: INFRASTRUCTURE,
    NETWORK_INGRESS: _network(BYTES_IN_PER_PRINCIPAL.key),
    NETWORK_EGRESS: _network(BYTES_OUT_PER_PRINCIPAL.key),
}
