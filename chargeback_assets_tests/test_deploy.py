"""deploy/helm/values.yaml, checked without a cluster: the run launcher config against dagster-k8s's own
schema, the instance settings against the repo's dagster.yaml, the chart version against the installed
Dagster. No cluster ran these values (README "Kubernetes")."""

from __future__ import annotations

import copy
import re
from typing import Any

import dagster as dg
import dagster_k8s
import dagster_postgres
import yaml
from dagster._config import resolve_to_config_type, validate_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_k8s import K8sRunLauncher

from chargeback_assets_tests.dagster_processes import REPO_ROOT, repo_instance_settings

HELM_VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"


def helm_values() -> dict[str, Any]:
    return yaml.safe_load(HELM_VALUES.read_text())


def config_errors(configurable: type, config: dict[str, Any]) -> list[str]:
    """What Dagster says, loading the instance, about `config` for `configurable` (empty: valid)."""
    result = validate_config(resolve_to_config_type(configurable.config_type()), config)
    return [error.message for error in result.errors or ()]


def test_the_run_launcher_config_is_valid_k8s_run_launcher_config() -> None:
    launcher = helm_values()["runLauncher"]
    assert launcher["type"] == "CustomRunLauncher"
    custom = launcher["config"]["customRunLauncher"]
    assert (custom["module"], custom["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert getattr(dagster_k8s, custom["class"]) is K8sRunLauncher
    assert config_errors(K8sRunLauncher, custom["config"]) == []

    # The same check refuses a misspelt key and a missing required one.
    broken = copy.deepcopy(custom["config"])
    broken["job_namespaces"] = broken.pop("job_namespace")
    del broken["instance_config_map"]
    errors = config_errors(K8sRunLauncher, broken)
    assert len(errors) == 2, errors
    assert any('unexpected config entry "job_namespaces"' in error for error in errors), errors
    assert any('"instance_config_map"' in error for error in errors), errors


def test_the_runs_are_queued_and_monitored_as_in_the_repo_instance() -> None:
    values, repo = helm_values(), repo_instance_settings()
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    custom = coordinator["config"]["customRunCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    assert {"module": custom["module"], "class": custom["class"], "config": custom["config"]} == repo[
        "run_coordinator"
    ]
    assert config_errors(QueuedRunCoordinator, custom["config"]) == []

    runs = values["concurrency"]["runs"]
    assert {"max_concurrent_runs": runs["maxConcurrentRuns"]} | {
        "tag_concurrency_limits": runs["tagConcurrencyLimits"]
    } == repo["concurrency"]["runs"]
    monitoring = {snake_case(key): value for key, value in values["dagsterDaemon"]["runMonitoring"].items()}
    assert monitoring == repo["run_monitoring"]
    assert values["pythonLogs"]["managedPythonLoggers"] == repo["python_logs"]["managed_python_loggers"]


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def test_the_chart_version_is_the_installed_dagster_release() -> None:
    installs = re.findall(r"dagster/dagster --version (\S+)", HELM_VALUES.read_text())
    assert installs == [dg.__version__]
    assert dagster_k8s.__version__ == dagster_postgres.__version__
    launcher_secret = helm_values()["runLauncher"]["config"]["customRunLauncher"]["config"]
    assert launcher_secret["postgres_password_secret"] == helm_values()["global"]["postgresqlSecretName"]
