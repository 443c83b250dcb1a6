from chargeback_assets_tests.databases import postgres_server, storage

__all__ = ["postgres_server", "storage"]
