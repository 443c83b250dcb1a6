"""`python -m chargeback_assets.sandbox`: serve a simulated organization until SIGTERM/SIGINT, or dump it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date

from chargeback_assets.sandbox.generator import SIZES, generate_org
from chargeback_assets.sandbox.server import SandboxServer
from chargeback_assets.sandbox.snapshot import dump_snapshot, load_snapshot


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargeback-sandbox", description="A simulated Confluent Cloud organization on 127.0.0.1."
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--end-date", type=date.fromisoformat, default=None, help="exclusive, YYYY-MM-DD")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--snapshot", help="serve this snapshot file instead of generating")
    parser.add_argument("--dump", help="write the organization as a snapshot to this file and exit")
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--api-secret", default="sandbox-secret")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        org = (
            load_snapshot(args.snapshot)
            if args.snapshot
            else generate_org(args.size, args.seed, args.end_date, args.days)
        )
    except (OSError, ValueError) as err:
        print(f"chargeback-sandbox: {err}", file=sys.stderr)
        return 2
    if args.dump:
        dump_snapshot(org, args.dump)
        print(f"wrote {args.dump}", flush=True)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with SandboxServer(org, args.host, args.port, args.api_key, args.api_secret) as server:
        print(server.url, flush=True)
        print("ready", flush=True)
        while not stop.wait(0.5):
            pass
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
