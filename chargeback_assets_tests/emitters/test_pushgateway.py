"""The push of the newest day against a real Pushgateway (Debian `prometheus-pushgateway`) on loopback."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from chargeback_assets.emitters.base import EmitterError
from chargeback_assets.emitters.prometheus import PrometheusEmitter
from chargeback_assets_tests.emitters.samples import HOSTILE, HOSTILE_LABEL, emit_row, period_facts
from chargeback_assets_tests.real_pushgateway import pushed, running_pushgateway

DAY1, DAY2 = date(2026, 3, 14), date(2026, 3, 15)


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


def test_publish_pushes_the_newest_day_and_replaces_the_group(tmp_path: Path, pushgateway: str) -> None:
    emitter = PrometheusEmitter(tmp_path, pushgateway_url=pushgateway)
    emitter.emit(
        "t-push",
        DAY2,
        [emit_row(DAY2, "sa-1", "2.5000"), emit_row(DAY2, "sa-2", "0.0001")],
        period_facts(DAY2),
    )
    emitter.emit("t-push", DAY1, [emit_row(DAY1, "sa-3", "7.0000", tags={"team": "pay"})], period_facts(DAY1))
    published = emitter.publish("t-push")
    assert published[1] == f"{pushgateway}/metrics/job/chargeback/tenant_id/t-push"
    assert pushed(pushgateway, "chargeback_amount", "t-push") == {"sa-1": "2.5", "sa-2": "0.0001"}

    emitter.emit("t-push", DAY2, [emit_row(DAY2, "sa-2", "4.0000", tags={"team": "pay"})], period_facts(DAY2))
    emitter.publish("t-push")
    assert pushed(pushgateway, "chargeback_amount", "t-push") == {"sa-2": "4"}
    assert pushed(pushgateway, "chargeback_tags_info", "t-push") == {"sa-2": "1"}


def test_a_refused_push_is_an_emitter_error_without_credentials(tmp_path: Path, pushgateway: str) -> None:
    bad = pushgateway.replace("http://", "http://user:hunter2@") + "/nothing-here"
    emitter = PrometheusEmitter(tmp_path, pushgateway_url=bad)
    emitter.emit("t1", DAY1, [emit_row(DAY1, "sa-1", "1.0000")], period_facts(DAY1))
    with pytest.raises(EmitterError, match="refused the push: HTTP 404") as raised:
        emitter.publish("t1")
    assert "hunter2" not in str(raised.value)


def test_withdrawing_the_newest_day_pushes_the_one_before_and_the_last_one_deletes_the_group(
    tmp_path: Path, pushgateway: str
) -> None:
    emitter = PrometheusEmitter(tmp_path, pushgateway_url=pushgateway)
    emitter.emit("t-gone", DAY1, [emit_row(DAY1, "sa-1", "1.5000")], period_facts(DAY1))
    emitter.emit("t-gone", DAY2, [emit_row(DAY2, "sa-2", "2.0000")], period_facts(DAY2))
    emitter.publish("t-gone")
    assert pushed(pushgateway, "chargeback_amount", "t-gone") == {"sa-2": "2"}

    emitter.retract("t-gone", DAY2)
    emitter.publish("t-gone")
    assert pushed(pushgateway, "chargeback_amount", "t-gone") == {"sa-1": "1.5"}

    emitter.retract("t-gone", DAY1)
    published = emitter.publish("t-gone")
    assert published[1] == f"{pushgateway}/metrics/job/chargeback/tenant_id/t-gone"
    assert pushed(pushgateway, "chargeback_amount", "t-gone") == {}
    assert pushed(pushgateway, "chargeback_identity_info", "t-gone") == {}


def test_a_hostile_label_value_is_pushed_and_served_escaped(tmp_path: Path, pushgateway: str) -> None:
    emitter = PrometheusEmitter(tmp_path, pushgateway_url=pushgateway)
    emitter.emit(
        "t-hostile", DAY1, [emit_row(DAY1, "sa-1", "1.0000", identity_name=HOSTILE)], period_facts(DAY1)
    )
    emitter.publish("t-hostile")
    served = requests.get(f"{pushgateway}/metrics", timeout=5).text.split("\n")
    [info] = [
        line
        for line in served
        if line.startswith("chargeback_identity_info{") and 'tenant_id="t-hostile"' in line
    ]
    assert f'identity_name="{HOSTILE_LABEL}"' in info
    assert pushed(pushgateway, "chargeback_amount", "t-hostile") == {"sa-1": "1"}


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(tmp_path: Path) -> None:
    login = ("pusher", "s3cret-pw")
    with running_pushgateway(tmp_path, basic_auth=login) as url:
        anonymous = PrometheusEmitter(tmp_path / "anonymous", pushgateway_url=url)
        anonymous.emit("t-auth", DAY1, [emit_row(DAY1, "sa-1", "1.0000")], period_facts(DAY1))
        with pytest.raises(EmitterError, match="refused the push: HTTP 401"):
            anonymous.publish("t-auth")

        signed = url.replace("http://", "http://pusher:s3cret-pw@")
        emitter = PrometheusEmitter(tmp_path / "out", pushgateway_url=signed)
        emitter.emit("t-auth", DAY1, [emit_row(DAY1, "sa-1", "1.5000")], period_facts(DAY1))
        published = emitter.publish("t-auth")
        assert pushed(url, "chargeback_amount", "t-auth", auth=login) == {"sa-1": "1.5"}
        emitter.retract("t-auth", DAY1)
        published += emitter.publish("t-auth")
        assert pushed(url, "chargeback_amount", "t-auth", auth=login) == {}
    assert published[1] == published[3] == f"{url}/metrics/job/chargeback/tenant_id/t-auth"
    assert not any("s3cret" in output for output in published)
