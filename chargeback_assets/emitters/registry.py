"""Emitter type -> a built emitter, its `params` validated with errors naming their key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chargeback_assets.config import EmitterConfig
from chargeback_assets.emitters.base import Emitter
from chargeback_assets.emitters.csv import DEFAULT_FILENAME_TEMPLATE, CsvEmitter, check_filename_template
from chargeback_assets.emitters.prometheus import DEFAULT_JOB, PrometheusEmitter
from chargeback_assets.settings_reader import Section
from chargeback_assets.validation import ConfigError


def _csv(params: Section) -> Emitter:
    output_dir = Path(params.string("output_dir"))
    template = params.string("filename_template", DEFAULT_FILENAME_TEMPLATE)
    problem = check_filename_template(template)
    if problem:
        raise ConfigError(params.at("filename_template"), problem)
    return CsvEmitter(output_dir, template)


def _prometheus(params: Section) -> Emitter:
    return PrometheusEmitter(
        Path(params.string("output_dir")),
        pushgateway_url=params.url("pushgateway_url", None),
        job=params.string("job", DEFAULT_JOB),
    )


BUILDERS: dict[str, Callable[[Section], Emitter]] = {"csv": _csv, "prometheus": _prometheus}


def build_emitter(config: EmitterConfig, where: str) -> Emitter:
    """`where` is the emitter's key path, e.g. `tenants.prod.emitters[0]`; unknown params are refused."""
    builder = BUILDERS.get(config.type)
    if builder is None:
        raise ConfigError(
            f"{where}.type", f"unknown emitter type {config.type!r}; allowed: {sorted(BUILDERS)}"
        )
    with Section(config.params, f"{where}.params") as params:
        return builder(params)
