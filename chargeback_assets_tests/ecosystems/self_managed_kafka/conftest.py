from chargeback_assets_tests.ecosystems.generic_metrics.metered_history import (  # noqa: F401
    prometheus,
    prometheus_upstream,
)
