"""`make demo` and `make ui`: the whole graph on two sandbox organizations, from a fresh clone.

`python -m chargeback_assets.demo` starts two sandboxes (acme-prod, acme-staging), writes a config for them,
materializes the last 30 days of every asset for both tenants through Dagster (one single-run backfill per
tenant), prints a report and stops the sandboxes. `python -m chargeback_assets.demo ui` starts the same
sandboxes plus dagster-webserver and dagster-daemon, and serves until interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from chargeback_assets.config import CONFIG_ENV_VAR
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config

TENANTS = {"acme-prod": 7, "acme-staging": 11}
REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "out" / "demo"


def emitters_for(outputs: Path) -> list[dict[str, Any]]:
    return [
        {"type": "csv", "name": "csv", "params": {"output_dir": str(outputs / "csv")}},
        {"type": "prometheus", "name": "prometheus", "params": {"output_dir": str(outputs / "prometheus")}},
    ]


@contextmanager
def demo_environment(workdir: Path, days: int, port: int = 0) -> Iterator[tuple[Path, date]]:
    """Sandboxes serving `days` days up to yesterday, and a config file for them; yields (config, newest)."""
    today = datetime.now(UTC).date()
    span = days + 5
    with ExitStack() as stack:
        tenants = {}
        for offset, (name, seed) in enumerate(TENANTS.items()):
            org = generate_org("small", seed=seed, end_date=today, days=span)
            server = stack.enter_context(SandboxServer(org, port=port + offset if port else 0))
            print(f"sandbox {name}: {server.url}", flush=True)
            tenants[name] = sandbox_tenant(
                org,
                server,
                tenant_id=name,
                start_date=today - timedelta(days=span),
                emitters=emitters_for(workdir / "outputs"),
            )
        config = write_config(workdir / "chargeback.yaml", tenants, workdir / "chargeback.db")
        yield config, today - timedelta(days=1)


def ensure_dagster_home() -> None:
    """Use the repo's instance (the Makefile sets DAGSTER_HOME); fall back to a temporary one."""
    if not os.environ.get("DAGSTER_HOME"):
        home = Path(tempfile.mkdtemp(prefix="chargeback-dagster-"))
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def run_demo(workdir: Path, days: int) -> int:
    import dagster as dg

    from chargeback_assets.constants import TENANT_TAG
    from chargeback_assets.definitions import CHARGEBACK_JOB, build_definitions
    from chargeback_assets.resources import ChargebackResource
    from chargeback_assets.stages.report import tenant_report

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ensure_dagster_home()
    ok = True
    with demo_environment(workdir, days) as (config, newest):
        os.environ[CONFIG_ENV_VAR] = str(config)
        defs = build_definitions(str(config))
        job = defs.resolve_job_def(CHARGEBACK_JOB)
        first = newest - timedelta(days=days - 1)
        checks: dict[str, list[tuple[str, bool]]] = {}
        with dg.DagsterInstance.get() as instance:
            for index, tenant in enumerate(TENANTS, start=1):
                step = f"[{index}/{len(TENANTS)}] {tenant}"
                print(f"\n{step}: materializing {first} .. {newest} ({days} days) in one run")
                started = time.monotonic()
                result = job.execute_in_process(
                    instance=instance,
                    tags={
                        TENANT_TAG: tenant,
                        "dagster/asset_partition_range_start": f"{first}|{tenant}",
                        "dagster/asset_partition_range_end": f"{newest}|{tenant}",
                    },
                    run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                    raise_on_error=False,
                )
                ok &= result.success
                checks[tenant] = [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()]
                state = "succeeded" if result.success else "FAILED"
                print(
                    f"[{index}/{len(TENANTS)}] {tenant}: run {result.run_id[:8]} {state} in "
                    f"{time.monotonic() - started:.1f}s"
                )
        chargeback = ChargebackResource(config_path=str(config))
        day_list = [first + timedelta(days=offset) for offset in range(days)]
        print("\n=== chargeback report ===")
        for tenant in TENANTS:
            with chargeback.data(tenant) as data:
                report = tenant_report(data, day_list)
            ok &= report.billed == report.allocated and report.mismatched_lines == 0
            print(
                f"\n{tenant}: {report.days} days  billed {report.billed}  allocated {report.allocated}  "
                f"unallocated {report.unallocated}"
            )
            print(f"  {'identity':<28} {'type':<22} {'name':<28} {'amount':>14}")
            for cost in report.top:
                print(
                    f"  {cost.identity_id:<28} {cost.identity_type:<22} {cost.display_name[:28]:<28} "
                    f"{cost.amount:>14}"
                )
            passed = sum(1 for _, p in checks[tenant] if p)
            failed = [name for name, p in checks[tenant] if not p]
            print(
                f"  checks: {passed}/{len(checks[tenant])} passed" + (f"; failed: {failed}" if failed else "")
            )
        outputs = workdir / "outputs"
        print(f"\noutputs: CSV in {outputs / 'csv'}, OpenMetrics in {outputs / 'prometheus'}")
        print(f"database: {workdir / 'chargeback.db'}   config: {config}")
    print("\ndemo " + ("finished: every line reconciles" if ok else "FAILED"))
    return 0 if ok else 1


def run_ui(workdir: Path, days: int, port: int) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_dagster_home()
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with demo_environment(workdir, days, port=port + 1000) as (config, _newest):
        env = {**os.environ, CONFIG_ENV_VAR: str(config)}
        workspace = str(REPO / "workspace.yaml")
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        scripts = Path(sys.executable).parent  # the console scripts installed beside this interpreter
        commands = {
            "webserver": [scripts / "dagster-webserver", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
            "daemon": [scripts / "dagster-daemon", "run", "-w", workspace],
        }
        processes = {
            name: subprocess.Popen(
                command, cwd=REPO, env=env, stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT
            )
            for name, command in commands.items()
        }
        print(f"\nDagster UI: http://127.0.0.1:{port}  (logs in {logs}; Ctrl-C to stop)", flush=True)
        try:
            while not stop and all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for name, process in processes.items():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                print(f"{name} stopped (exit {process.returncode})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chargeback_assets.demo", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["run", "ui"], default="run")
    parser.add_argument("--days", type=int, default=30, help="days to materialize (default 30)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where config, database and outputs go"
    )
    parser.add_argument(
        "--port", type=int, default=3000, help="dagster-webserver port for `ui` (default 3000)"
    )
    args = parser.parse_args(argv)
    if args.command == "ui":
        return run_ui(args.workdir, args.days, args.port)
    return run_demo(args.workdir, args.days)


if __name__ == "__main__":
    sys.exit(main())
