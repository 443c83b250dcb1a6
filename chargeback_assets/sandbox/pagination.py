"""Confluent-style list paging: `page_size` on the first request only, opaque tokens, absolute `next` URLs."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


class PageError(ValueError):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Any]
    total: int
    next_token: str | None
    request_token: str | None
    size: int


def encode_token(offset: int, size: int) -> str:
    raw = json.dumps({"o": offset, "s": size}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, size = int(data["o"]), int(data["s"])
    except (ValueError, KeyError, TypeError):
        raise PageError("page_token", f"page_token {token[:40]!r} is not a token this API issued") from None
    if offset < 0 or size < 1:
        raise PageError("page_token", "page_token is out of range")
    return offset, size


def take_page(items: Sequence[Any], query: dict[str, list[str]], default_size: int, max_size: int) -> Page:
    token = (query.get("page_token") or [""])[-1]
    if token:
        offset, size = _decode_token(token)
    else:
        offset, size = 0, _page_size(query, default_size, max_size)
    end = offset + size
    next_token = encode_token(end, size) if end < len(items) else None
    return Page(items[offset:end], len(items), next_token, token or None, size)


def _page_size(query: dict[str, list[str]], default_size: int, max_size: int) -> int:
    raw = (query.get("page_size") or [""])[-1]
    if not raw:
        return default_size
    try:
        size = int(raw)
    except ValueError:
        raise PageError("page_size", f"page_size must be an integer, got {raw!r}") from None
    if not 1 <= size <= max_size:
        raise PageError("page_size", f"page_size must be between 1 and {max_size}, got {size}")
    return size


def page_url(base: str, path: str, query: dict[str, list[str]], token: str | None) -> str:
    """The list URL with the caller's filters kept; paging parameters replaced by `token`."""
    params = [(k, v) for k, values in query.items() if k not in ("page_token", "page_size") for v in values]
    if token:
        params.append(("page_token", token))
    return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")
