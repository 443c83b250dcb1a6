from datetime import date, datetime

from chargeback_assets.engine.models import UTC
from chargeback_assets_tests.databases import blank_storage, db, postgres_server, storage

__all__ = ["blank_storage", "db", "postgres_server", "storage"]

ECO = "confluent_cloud"
TENANT = "acme"
OTHER_TENANT = "globex"
DAY = date(2024, 3, 10)


def at(hour: int = 0, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
