"""Any system priced from Prometheus queries: configured cost types, metered by day."""

from chargeback_assets.ecosystems.generic_metrics.ecosystem import GenericMetricsEcosystem

ECOSYSTEM = GenericMetricsEcosystem()

__all__ = ["ECOSYSTEM"]
