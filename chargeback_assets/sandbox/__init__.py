"""A deterministic simulated Confluent Cloud organization, served on 127.0.0.1 for the demo and the tests."""

from chargeback_assets.sandbox.generator import generate_org
from chargeback_assets.sandbox.organization import Organization
from chargeback_assets.sandbox.server import SandboxServer
from chargeback_assets.sandbox.snapshot import dump_snapshot, load_snapshot

__all__ = ["Organization", "SandboxServer", "dump_snapshot", "generate_org", "load_snapshot"]
