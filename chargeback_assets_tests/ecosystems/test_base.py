"""chargeback_assets/ecosystems/base.py: what every ecosystem's HTTP sources share."""

from __future__ import annotations

import json
import math

import pytest
import requests

from chargeback_assets.ecosystems.base import json_body


def response(content: bytes, encoding: str | None = None) -> requests.Response:
    reply = requests.Response()
    reply.status_code = 200
    reply._content = content
    reply.encoding = encoding
    return reply


@pytest.mark.parametrize(
    "content",
    [
        b'{"status": "success", "data": {"result": [{"metric": {}, "values": [[1.5, "12"]]}]}}',
        b'{"a": 1, "a": 2}',  # the last duplicate wins in both decoders
        b'["\\u00e9", 0.1, -0, 1e-7, 18446744073709551615]',
        b"[1e400, 123456789012345678901234567890]",  # orjson refuses 1e400, so Python decodes both
        b'["\\ud800 unpaired"]',  # kept, so that the source can refuse it by name
        b"\xef\xbb\xbf[1]",  # a byte-order mark
    ],
)
def test_json_body_decodes_what_the_standard_decoder_does(content: bytes) -> None:
    assert json_body(response(content)) == json.loads(content.decode("utf-8-sig"))


def test_json_body_reads_nan_and_a_body_in_another_encoding_as_requests_does() -> None:
    assert math.isnan(json_body(response(b"[NaN]"))[0])
    assert json_body(response('["caf\u00e9"]'.encode("utf-16"), "utf-16")) == ["caf\u00e9"]


@pytest.mark.parametrize("content", [b"", b"<html>bad gateway</html>", b'{"truncated": '])
def test_a_body_that_is_not_json_raises_value_error(content: bytes) -> None:
    with pytest.raises(ValueError):
        json_body(response(content))
