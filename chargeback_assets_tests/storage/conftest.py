from collections.abc import Iterator
from datetime import date, datetime

import pytest

from chargeback_assets.engine.models import UTC
from chargeback_assets.storage.database import ChargebackDatabase

ECO = "confluent_cloud"
TENANT = "acme"
OTHER_TENANT = "globex"
DAY = date(2024, 3, 10)


def at(hour: int = 0, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def db(tmp_path) -> Iterator[ChargebackDatabase]:
    database = ChargebackDatabase.open(tmp_path / "chargeback.db")
    yield database
    database.close()
