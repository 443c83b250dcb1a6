"""What the command-line tools (`tags`, `tenants`) share: their exit codes, how they report an error, and
how they load the config, so every tool answers a bad file or a bad request the same way."""

from __future__ import annotations

import sys
from pathlib import Path

from chargeback_assets.config import AppConfig, load_config
from chargeback_assets.validation import ConfigError

OK, FAILED, USAGE = 0, 1, 2
"""0 done; 1 the request could not be carried out; 2 invalid command line."""


def fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def load_config_or_report(path: Path) -> AppConfig | None:
    """The config, or None once the reason it cannot be loaded is reported (the tool then exits FAILED)."""
    try:
        return load_config(path)
    except (ConfigError, OSError) as exc:
        fail(FAILED, f"cannot load {path}: {exc}")
        return None
