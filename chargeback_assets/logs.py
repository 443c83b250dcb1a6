"""Applying the config's `logging` section to the project's Python loggers.

Sources log through `logging.getLogger(__name__)` (retries, malformed rows); Dagster shows those records in
a run's logs because the instance manages the `chargeback_assets` logger (.dagster_home/dagster.yaml).
"""

from __future__ import annotations

import logging

from chargeback_assets.config import LoggingConfig

PACKAGE_LOGGER = "chargeback_assets"


def configure_logging(settings: LoggingConfig) -> None:
    """Set the package's level and each configured module's; a bare process gets a stderr handler."""
    logging.basicConfig(format=settings.format)  # no-op when the process (e.g. Dagster) set up handlers
    logging.getLogger(PACKAGE_LOGGER).setLevel(settings.level)
    for module, level in settings.per_module_levels.items():
        logging.getLogger(module).setLevel(level)
