"""Emitter type -> the model of its `params`, which validates them at config load and builds the emitter."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from chargeback_assets.emitters.base import Emitter
from chargeback_assets.emitters.csv import CsvParams
from chargeback_assets.emitters.focus import FocusParams
from chargeback_assets.emitters.prometheus import PrometheusParams


class EmitterParams(Protocol):
    def build(self) -> Emitter:
        """The emitter these params describe; it touches its destination only when it emits."""
        ...


EMITTER_PARAMS: Mapping[str, type[EmitterParams]] = MappingProxyType(
    {"csv": CsvParams, "prometheus": PrometheusParams, "focus": FocusParams}
)
