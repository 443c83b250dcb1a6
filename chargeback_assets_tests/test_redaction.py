"""No secret reaches any sink, in any shape: log records, Dagster events, metadata and compute logs, the
console, the chargeback database's error columns and the exception text, through real Dagster runs against
sandboxes that leak the credentials back (servers echoing the Authorization header, decoded and
percent-encoded, in their error bodies)."""

import base64
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from chargeback_assets.emitters.prometheus import PrometheusParams
from chargeback_assets.redaction import MASK, encodings, remember_basic_credentials, remember_secret, scrub
from chargeback_assets.storage.database import ChargebackDatabase
from chargeback_assets.storage.pipeline import recent_runs
from chargeback_assets.validation import validate
from chargeback_assets_tests.graph import Graph, running_graph

# Each canary holds a marker that every text encoding keeps (raw, repr- or JSON-escaped, percent-encoded),
# and characters that make each encoding differ from the raw value.
CCLOUD_KEY = "CCKEY0001"
CCLOUD_SECRET = 'cc-CANARYccSECRET/+= "q"\\x'
PROMETHEUS_USER = "prom-user"
PROMETHEUS_PASSWORD = 'pw-CANARYpromPASS/+= "q"\\x'
BEARER_TOKEN = 'tok-CANARYbearerTOKEN/+= "q"\\x\n'  # what `$(cat token-file)` gives: a trailing newline
CANARIES = {
    "CANARYccSECRET": CCLOUD_SECRET,
    "CANARYpromPASS": PROMETHEUS_PASSWORD,
    "CANARYbearerTOKEN": BEARER_TOKEN,
}
BASIC_PAIRS = ((CCLOUD_KEY, CCLOUD_SECRET), (PROMETHEUS_USER, PROMETHEUS_PASSWORD))


def leaks(text: str) -> list[str]:
    """Every canary shape found in `text`: raw, repr- or JSON-escaped, percent-encoded, any other text
    holding a marker, and the start of the base64 `user:password` of a Basic header (18 bytes, a whole
    number of base64 groups that reach into the password, so that a copy cut short is found too)."""
    found = set()
    for marker, secret in CANARIES.items():
        value = secret.strip()
        shapes = {
            "raw": value,
            "repr": repr(value)[1:-1],
            "json": json.dumps(value)[1:-1],
            "url": quote(value, safe=""),
            "other": marker,
        }
        found |= {f"{marker} {shape}" for shape, form in shapes.items() if form in text}
    for user, password in BASIC_PAIRS:
        if base64.b64encode(f"{user}:{password}".encode()[:18]).decode() in text:
            found.add(f"base64 of {user}:{password[:6]}…")
    return sorted(found)


def test_every_encoding_of_a_secret_is_masked_and_ordinary_text_is_left_alone() -> None:
    secret = 'ab/c+d= "e"\\f\n'
    remember_basic_credentials("someone", secret)
    shapes = {
        "raw": secret,
        "repr": repr(secret),
        "json": json.dumps({"error": secret}),
        "url": "https://x/login?p=ab%2Fc%2Bd%3D%20%22e%22%5Cf%0A",
        "form": "p=ab%2Fc%2Bd%3D+%22e%22%5Cf%0A",
        "basic": "Authorization: Basic " + base64.b64encode(f"someone:{secret}".encode()).decode(),
        "stripped": "token " + secret.strip() + " refused",
    }
    for shape, text in shapes.items():
        scrubbed = scrub(text)
        assert MASK in scrubbed, shape
        assert "ab/c" not in scrubbed and "ab%2Fc" not in scrubbed, (shape, scrubbed)
        assert "c29tZW9uZTph" not in scrubbed, (shape, scrubbed)  # base64 of "someone:a"
    assert scrub("tenant acme-prod, date 2026-03-14: billing source failed") == (
        "tenant acme-prod, date 2026-03-14: billing source failed"
    )
    remember_secret("ab")  # too short to tell from ordinary text: masking it would garble every message
    assert scrub("a tab stop") == "a tab stop"
    assert "ab" not in encodings("ab") and "ab\n" not in encodings("ab\n")


def test_a_log_record_of_any_logger_is_scrubbed_with_its_traceback(caplog) -> None:
    remember_basic_credentials("someone", "hunter2-for-logs")
    with caplog.at_level(logging.WARNING):
        try:
            raise ValueError("refused 'hunter2-for-logs\\n'")
        except ValueError:
            logging.getLogger("some.library").exception("call failed with %s", "hunter2-for-logs")
    assert "hunter2-for-logs" not in caplog.text
    assert "call failed with ***" in caplog.text
    assert "ValueError: refused '***\\n'" in caplog.text


@pytest.fixture
def leaky_graph(tmp_path: Path) -> Iterator[Graph]:
    """acme-prod: its Confluent secret and Prometheus basic-auth password are canaries, and one try per
    metrics query (so an echoing 503 is recorded as a fetch failure at once). acme-staging: a Prometheus
    bearer token with a trailing newline (stripped when the config is read)."""
    sandboxes = {
        "acme-prod": {
            "api_key": CCLOUD_KEY,
            "api_secret": CCLOUD_SECRET,
            "prometheus_basic": (PROMETHEUS_USER, PROMETHEUS_PASSWORD),
        },
        "acme-staging": {"api_key": CCLOUD_KEY, "api_secret": CCLOUD_SECRET},
    }
    tenants = {
        "acme-prod": {
            "metrics": {
                "auth_type": "basic",
                "username": PROMETHEUS_USER,
                "password": PROMETHEUS_PASSWORD,
                "max_attempts": 1,
            },
        },
        "acme-staging": {"metrics": {"auth_type": "bearer", "bearer_token": BEARER_TOKEN}},
    }
    with running_graph(tmp_path, days=5, tenant_settings=tenants, sandbox_settings=sandboxes) as graph:
        yield graph


def dagster_home_text(home: Path, timeout: float = 30.0) -> str:
    """Every file of a Dagster home as text, and every row of its SQLite storages; the compute logs are
    written by a separate process, so their `.complete` marks are awaited first."""
    deadline = time.monotonic() + timeout
    while True:
        logs = {p.with_suffix("") for p in home.rglob("compute_logs/*") if p.suffix in (".out", ".err")}
        if all(log.with_suffix(".complete").exists() for log in logs) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert logs, f"no compute logs under {home}"
    return "\n".join(file_text(path) for path in sorted(home.rglob("*")) if path.is_file())


def file_text(path: Path) -> str:
    """A file's bytes as text, plus every row of every table when it is a SQLite database (whose pages may
    split a string)."""
    text = path.read_bytes().decode("utf-8", "replace")
    if text.startswith("SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            text += "\n".join(repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))
    return text


def test_leaked_credentials_reach_no_sink_in_any_shape(leaky_graph: Graph, tmp_path: Path, capfd) -> None:
    graph, day = leaky_graph, leaky_graph.newest
    prod = graph.sandboxes["acme-prod"].faults
    home = tmp_path / "dagster_home"
    home.mkdir()
    managed = {"python_logs": {"managed_python_loggers": ["chargeback_assets"]}}
    with dg.instance_for_test(temp_dir=str(home), overrides=managed) as instance:
        # 1. Servers echo the credentials: the identities endpoint refuses (403) and every metrics query
        # fails (503, transient): the run succeeds with an incomplete inventory and usage fetch failures.
        prod.set("echo_credentials", times=None, path_prefix="/iam/v2/service-accounts", status=403)
        prod.set("echo_credentials", times=None, path_prefix="/api/v1/query_range", status=503)
        echoed = graph.run("acme-prod", day, instance=instance)
        prod.clear()
        # 2. The billing API echoes them in a 403: the partition fails, quoting the server.
        prod.set("echo_credentials", times=None, path_prefix="/billing/", status=403)
        refused = graph.run("acme-prod", day - timedelta(days=1), instance=instance, raise_on_error=False)
        # 3. Prometheus echoes the bearer token in a 403: the partition fails quoting it repr-escaped.
        staging = graph.sandboxes["acme-staging"].faults
        staging.set("echo_credentials", times=None, path_prefix="/api/v1/query_range", status=403)
        bearer = graph.run("acme-staging", day, instance=instance, raise_on_error=False)
        for result in (echoed, refused, bearer):
            graph.audit(instance, result.run_id)

        assert echoed.success and not refused.success and not bearer.success
        events = "\n".join(
            serialize_value(entry)
            for result in (echoed, refused, bearer)
            for entry in instance.all_logs(result.run_id)
        )
    console = capfd.readouterr()
    db = ChargebackDatabase.open(graph.db_path)
    try:
        failures = db.conn.execute("SELECT error FROM usage_fetch_failures").fetchall()
        audits = {
            run.run_id: run.error_message
            for tenant in ("acme-prod", "acme-staging")
            for run in recent_runs(db, "confluent_cloud", tenant)
        }
    finally:
        db.close()

    sinks = {
        "console": console.out + console.err,
        "Dagster events": events,
        "Dagster home (event storage, compute logs)": dagster_home_text(home),
        "chargeback database and outputs": "\n".join(
            file_text(path)
            for path in sorted(graph.workdir.rglob("*"))
            if path.is_file() and path != graph.config_path and home not in path.parents
        ),
    }
    assert {sink: leaks(text) for sink, text in sinks.items()} == {sink: [] for sink in sinks}
    # ... and not because nothing was said: the leaks happened and reached each sink, masked.
    assert failures and all(MASK in error for (error,) in failures)
    assert "incomplete inventory" in events and MASK in events
    assert MASK in (audits[refused.run_id] or "") and "billing source failed" in audits[refused.run_id]
    assert "metrics source failed" in audits[bearer.run_id] and f"Bearer {MASK}" in audits[bearer.run_id]
    assert MASK in console.err


def test_a_password_written_into_a_url_is_masked_as_written_decoded_and_in_its_basic_header() -> None:
    url = "http://pusher:p%40ss%2Fw0rd-in-url@127.0.0.1:9091"
    validate(PrometheusParams, {"output_dir": "out", "pushgateway_url": url})
    basic = base64.b64encode(b"pusher:p@ss/w0rd-in-url").decode()
    for shape in ("p%40ss%2Fw0rd-in-url", "p@ss/w0rd-in-url", f"Basic {basic}"):
        assert "w0rd" not in scrub(f"refused {shape}") and MASK in scrub(f"refused {shape}"), shape
