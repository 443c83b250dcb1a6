"""Keeping credentials out of every text the project writes, whatever shape they leak in.

`Secret` keeps a value out of `str()` and `repr()`, but a value leaves a process in ways no wrapper sees: an
HTTP library quoting the header it refused (`'Bearer abc\\n'`, repr-escaped), a server echoing the
Authorization header in an error body (base64 of `key:secret`), a proxy page or a URL carrying it
percent-encoded. So every secret value the process reads is remembered here in each encoding it may take
(`encodings`), and `scrub` masks all of them in any text before it reaches a sink:

- log records of every logger (a log record factory, installed when the first secret is remembered), which
  covers the console, Dagster's event storage and the step's compute logs;
- exception messages: `SourceError`, `EmitterError`, `StageError` and `ConfigError` scrub their own text,
  so a failure's description, its Dagster event and the run audit never hold a secret;
- Dagster metadata and failures (`assets/runs.py` `scrubbed_metadata`, `TenantWork`);
- the database's error columns (`usage_fetch_failures.error`, `emission_records.last_error`,
  `pipeline_runs.error_message`), scrubbed by their repositories.

The registry is per process and only grows: a process holds a secret only after its config was read, and it
must keep masking the value for as long as it may print it. Values shorter than `MIN_SCRUBBED_LENGTH` are
not masked: they cannot be told from ordinary text, and masking them would garble every message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SCRUBBED_LENGTH = 4


def encodings(value: str) -> set[str]:
    """The shapes `value` may take in a message: as given and stripped of surrounding whitespace (what a
    server compares), each raw, repr- and JSON-escaped (once and twice: a message quoting a message),
    percent-encoded, and as the escaped text of its UTF-8 bytes."""
    forms: set[str] = set()
    for variant in {value, value.strip()}:
        escaped = {
            variant,
            repr(variant)[1:-1],
            ascii(variant)[1:-1],
            json.dumps(variant)[1:-1],
            json.dumps(variant, ensure_ascii=False)[1:-1],
            repr(variant.encode("utf-8", "surrogatepass"))[2:-1],
        }
        for form in list(escaped):
            escaped |= {repr(form)[1:-1], json.dumps(form)[1:-1]}
        forms |= escaped | {quote(variant, safe=""), quote(variant), quote_plus(variant)}
    return {form for form in forms if len(form) >= MIN_SCRUBBED_LENGTH}


def basic_credentials_encodings(username: str, password: str) -> set[str]:
    """The base64 of `username:password` that an `Authorization: Basic` header carries, as UTF-8 and as
    Latin-1 (what `requests` sends), standard and URL-safe, without the `=` padding (so a padded,
    unpadded or percent-encoded copy is masked alike)."""
    forms: set[str] = set()
    for secret in {password, password.strip()}:
        pair = f"{username}:{secret}"
        for charset in ("utf-8", "latin-1"):
            try:
                raw = pair.encode(charset)
            except UnicodeEncodeError:
                continue
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                forms.add(encode(raw).decode("ascii").rstrip("="))
    return {form for form in forms if len(form) >= MIN_SCRUBBED_LENGTH}


class _KnownSecrets:
    """The process's secret forms and one pattern matching any of them, longest first (so a form that
    contains another is masked whole)."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, forms: Iterable[str]) -> None:
        with self._lock:
            new = set(forms) - self._forms
            if not new:
                return
            self._forms |= new
            ordered = sorted(self._forms, key=lambda form: (-len(form), form))
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        _install_log_scrubbing()

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


_KNOWN = _KnownSecrets()


def remember_secret(value: str) -> None:
    """From now on, mask `value` in every encoding wherever this process writes text."""
    _KNOWN.add(encodings(value))


def remember_basic_credentials(username: str, password: str) -> None:
    """Mask the password and the base64 `username:password` an `Authorization: Basic` header carries."""
    _KNOWN.add(encodings(password) | basic_credentials_encodings(username, password))


def scrub(text: str) -> str:
    """`text` with every known secret, in every known encoding, replaced by `***`."""
    return _KNOWN.scrub(text)


def scrub_data(value: Any) -> Any:
    """`value` with every string in it scrubbed, through dicts, lists and plain tuples (JSON-shaped data);
    anything else (numbers, a library's records, which may be tuples underneath) is returned as it is."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {key: scrub_data(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(scrub_data(item) for item in value)
    return value


# -- log records ------------------------------------------------------------------------------------------

_install_lock = threading.Lock()
_installed = False


def _install_log_scrubbing() -> None:
    """Scrub every log record as it is made, whichever logger makes it.

    A filter would have to sit on every handler (a logger's own filters never see its children's records),
    and Dagster adds its handlers during a run. The record factory sees each record once, before any
    handler: the message is rendered and masked, and a traceback is formatted and masked into `exc_text`,
    which formatters print instead of formatting the exception again.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        make_record = logging.getLogRecordFactory()

        def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            scrub_record(record)
            return record

        logging.setLogRecordFactory(scrubbed_record)
        _installed = True


_TRACEBACKS = logging.Formatter()


def scrub_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's message and traceback, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is logging's to report, not ours to break
        return
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = scrub(_TRACEBACKS.formatException(record.exc_info))
