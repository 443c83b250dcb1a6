import logging

import pytest

from chargeback_assets.config import parse_config
from chargeback_assets.logs import PACKAGE_LOGGER, configure_logging


@pytest.fixture
def restore_levels():
    names = [PACKAGE_LOGGER, "urllib3"]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_the_logging_section_sets_our_level_and_each_modules(restore_levels) -> None:
    raw = {
        "logging": {"level": "debug", "per_module_levels": {"urllib3": "error"}},
        "tenants": {
            "t": {
                "ecosystem": "confluent_cloud",
                "tenant_id": "t",
                "start_date": "2026-01-01",
                "plugin_settings": {"ccloud_api": {"key": "k", "secret": "s"}},
            }
        },
    }
    configure_logging(parse_config(raw, {}).logging)
    assert logging.getLogger(PACKAGE_LOGGER).level == logging.DEBUG
    assert logging.getLogger("urllib3").level == logging.ERROR
