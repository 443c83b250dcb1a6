"""`make demo` and `make ui`: the whole graph on two sandbox organizations, from a fresh clone.

`python -m chargeback_assets.demo` starts two sandboxes (acme-prod, acme-staging), writes a config for them,
materializes the last 30 days of every asset for both tenants through Dagster (one single-run backfill per
tenant), prints a report and stops the sandboxes. `python -m chargeback_assets.demo ui` starts the same
sandboxes plus dagster-webserver and dagster-daemon, and serves until interrupted.

Both keep everything under the workdir (default out/demo), including their own Dagster instance
(`dagster_home/`): the demo's runs never land in the repo's `.dagster_home`, which belongs to a real
configuration.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from chargeback_assets.config import CONFIG_ENV_VAR
from chargeback_assets.sandbox import SandboxServer, generate_org
from chargeback_assets.sandbox.organization import Organization
from chargeback_assets.sandbox.tenants import sandbox_tenant, write_config

TENANTS = {"acme-prod": 7, "acme-staging": 11}
TOPIC_TENANT = "acme-prod"
"""The tenant the demo turns topic attribution on for (the other shows a tenant without it)."""
REPO = Path(__file__).resolve().parent.parent
REPO_DAGSTER_YAML = REPO / ".dagster_home" / "dagster.yaml"
"""The Dagster instance settings every make target uses (DAGSTER_HOME=.dagster_home)."""
DEFAULT_WORKDIR = REPO / "out" / "demo"
UI_HOST = "127.0.0.1"
LOG_TAIL_LINES = 20


def emitters_for(outputs: Path) -> list[dict[str, Any]]:
    return [
        {"type": "csv", "name": "csv", "params": {"output_dir": str(outputs / "csv")}},
        {"type": "prometheus", "name": "prometheus", "params": {"output_dir": str(outputs / "prometheus")}},
        {"type": "focus", "name": "focus", "params": {"output_dir": str(outputs / "focus")}},
    ]


def team_tags(org: Organization) -> dict[str, Any]:
    """A `team` tag on every service account, named after the team its display name starts with
    (`payments-app-0000` belongs to payments), so the team rollups have teams to show; users stay
    untagged, as people often are, and show under UNTAGGED."""
    return {
        "identities": {
            account["id"]: {"team": account["display_name"].split("-", 1)[0]}
            for account in org.objects.get("service_accounts", [])
        }
    }


@contextmanager
def demo_environment(workdir: Path, days: int) -> Iterator[tuple[Path, date]]:
    """Sandboxes serving the `days` days up to yesterday, and a config for them; yields (config, newest).

    The tenants start on the first of those days, so every date partition is a day the sandboxes bill: a
    partition before it would stay missing with nothing to explain why. No earlier history is needed:
    objects created before the first day only carry older `created_at`s, and usage is queried per day.
    """
    newest = datetime.now(UTC).date() - timedelta(days=1)
    first = newest - timedelta(days=days - 1)
    with ExitStack() as stack:
        tenants = {}
        for name, seed in TENANTS.items():
            org = generate_org("small", seed=seed, end_date=newest + timedelta(days=1), days=days)
            server = stack.enter_context(SandboxServer(org, port=0))
            print(f"sandbox {name}: {server.url}", flush=True)
            tenants[name] = sandbox_tenant(
                org,
                server,
                tenant_id=name,
                start_date=first,
                emitters=emitters_for(workdir / "outputs"),
                topic_attribution={"enabled": True} if name == TOPIC_TENANT else None,
                tags=team_tags(org),
            )
        config = write_config(workdir / "chargeback.yaml", tenants, workdir / "chargeback.db")
        yield config, newest


def use_demo_dagster_home(workdir: Path) -> Path:
    """Point DAGSTER_HOME (for this process and the servers it starts) at `<workdir>/dagster_home`.

    The demo's runs describe the demo's database, so they live beside it and go when `make demo` clears the
    workdir; an existing home is reused, so `make ui` after `make demo` shows the demo's runs. dagster.yaml
    is copied from the repo every time (run queue, telemetry off). The storage is created here, once,
    because a webserver and a daemon initialising a fresh instance together race on its migrations.
    """
    import dagster as dg

    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get():
        pass
    return home


def silence_dagster_notices() -> None:
    """Hide Dagster's Beta and Preview notices (single-run backfills, partitioned asset checks).

    The project uses those features knowingly (setup.cfg filters the same two categories for pytest); on
    the demo's console the notices read as problems. Other warnings still show.
    """
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def run_demo(workdir: Path, days: int) -> int:
    silence_dagster_notices()  # before the definitions are imported: the notices come from their decorators
    import dagster as dg

    from chargeback_assets.constants import TENANT_TAG
    from chargeback_assets.definitions import CHARGEBACK_JOB, build_definitions
    from chargeback_assets.emitters.focus import FOCUS_VERSION
    from chargeback_assets.resources import ChargebackResource
    from chargeback_assets.stages.report import tenant_report, topic_report

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    home = use_demo_dagster_home(workdir)
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
                report = tenant_report(data, day_list, datetime.now(UTC).date())
                settle_days = data.tenant.settle_days
            ok &= report.billed == report.allocated and report.mismatched_lines == 0
            share = report.unattributed / report.billed if report.billed else 0
            print(
                f"\n{tenant}: {report.days} days, amounts in {report.currency}  billed {report.billed}  "
                f"allocated {report.allocated}  unallocated {report.unallocated}  "
                f"unattributed {report.unattributed} ({share:.1%})"
            )
            print(
                f"  settled: {report.days - report.provisional_days} days; provisional (younger than "
                f"settle_days={settle_days}, may still be revised): {report.provisional_days} days, "
                f"{report.provisional_billed} {report.currency}"
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
            if tenant == TOPIC_TENANT:
                with chargeback.data(tenant) as data:
                    topics = topic_report(data, day_list)
                ok &= topics.mismatched_lines == 0
                print(
                    f"  topic attribution: Kafka cluster cost {topics.cluster_cost}, attributed "
                    f"{topics.attributed}; top topics:"
                )
                for cluster, topic, amount in topics.top:
                    print(f"    {cluster:<14} {topic:<40} {amount:>14}")
        outputs = workdir / "outputs"
        teams = sorted((outputs / "csv").glob("*_teams.csv"))
        print(
            f"\noutputs: CSV in {outputs / 'csv'} ({len(teams)} team rollups), OpenMetrics in "
            f"{outputs / 'prometheus'}, FOCUS {FOCUS_VERSION} in {outputs / 'focus'}"
        )
        print(f"database: {workdir / 'chargeback.db'}   config: {config}")
        print(f"dagster instance: {home}")
    print("\ndemo " + ("finished: every line reconciles" if ok else "FAILED"))
    return 0 if ok else 1


def port_problem(port: int) -> str | None:
    """Why dagster-webserver could not listen on 127.0.0.1:`port`, or None if it can.

    Asked before anything starts, because a webserver that cannot bind only says so in its log. The probe
    binds as the webserver does (SO_REUSEADDR, like uvicorn), so the TIME_WAIT leftovers of a webserver
    stopped a moment ago do not count as the port being in use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((UI_HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} on {UI_HOST} is already in use"
            return f"cannot listen on {UI_HOST}:{port}: {error.strerror}"
    return None


def log_tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(f"  {line}" for line in lines[-LOG_TAIL_LINES:]) or "  (empty)"


def run_ui(workdir: Path, days: int, port: int) -> int:
    """Serve the demo's sandboxes with dagster-webserver and dagster-daemon until interrupted.

    Returns 0 only when the operator stopped it: a port in use, or a server exiting by itself, is a failure
    named on stderr (with the end of the server's log), so `make ui` does not report success for a UI that
    is not there.
    """
    problem = port_problem(port)
    if problem:
        print(
            f"cannot start the Dagster UI: {problem}; choose another with `make ui PORT={port + 1}`",
            file=sys.stderr,
        )
        return 1
    workdir.mkdir(parents=True, exist_ok=True)
    home = use_demo_dagster_home(workdir)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    with demo_environment(workdir, days) as (config, _newest):
        env = {**os.environ, CONFIG_ENV_VAR: str(config)}
        workspace = str(REPO / "workspace.yaml")
        scripts = Path(sys.executable).parent  # the console scripts installed beside this interpreter
        commands = {
            "webserver": [scripts / "dagster-webserver", "-w", workspace, "-h", UI_HOST, "-p", str(port)],
            "daemon": [scripts / "dagster-daemon", "run", "-w", workspace],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}
        exited: dict[str, int] = {}
        try:
            for name, command in commands.items():
                with (logs / f"{name}.log").open("w") as log:
                    processes[name] = subprocess.Popen(
                        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
            print(f"\nDagster UI: http://{UI_HOST}:{port}  (Ctrl-C to stop)")
            print(f"instance: {home}   logs: {logs}", flush=True)
            while not stop and not exited:
                time.sleep(0.5)
                exited = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        finally:
            stop_servers(processes)
    if stop:  # asked to stop; the servers may have had the same Ctrl-C, so how they exited is no news
        exited = {}
    for name, process in processes.items():
        if name not in exited:
            print(f"{name} stopped (exit {process.returncode})")
    for name, code in exited.items():
        log = logs / f"{name}.log"
        print(
            f"\n{name} exited on its own (exit code {code}); last lines of {log}:\n{log_tail(log)}",
            file=sys.stderr,
        )
    return 1 if exited else 0


def stop_servers(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM the servers still running, all first so they stop in parallel; SIGKILL one that hangs."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def port_number(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chargeback_assets.demo", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["run", "ui"], default="run")
    parser.add_argument("--days", type=int, default=30, help="days to materialize (default 30)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="where config, database, outputs, logs and the Dagster instance go",
    )
    parser.add_argument(
        "--port", type=port_number, default=3000, help="dagster-webserver port for `ui` (default 3000)"
    )
    args = parser.parse_args(argv)
    if args.command == "ui":
        return run_ui(args.workdir, args.days, args.port)
    return run_demo(args.workdir, args.days)


if __name__ == "__main__":
    sys.exit(main())
