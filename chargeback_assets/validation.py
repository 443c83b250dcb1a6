"""Shared vocabulary for configuration errors and secrets.

Every config error carries the key path it is about, so a user can find the line in their YAML; secrets are
wrapped so that no repr, log line or error message can show them by accident.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value broke a rule; `path` is the dotted key path, e.g. `tenants.prod.start_date`."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


class Secret:
    """A credential: `str()` and `repr()` are masked; only `reveal()` gives the value, where it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)
