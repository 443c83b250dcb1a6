"""A handler resolves a resource, not a line: each resource of a day is resolved once per window, and its
lines share that resolution, in memory and as stored."""

from collections import Counter

from chargeback_assets.ecosystems.confluent_cloud.handlers import KafkaHandler
from chargeback_assets.ecosystems.retry import RetryBudget
from chargeback_assets.engine.fingerprint import line_id
from chargeback_assets.stages.resolution import resolve_day
from chargeback_assets.stages.usage import fetch_usage
from chargeback_assets.storage.billing import billing_for_day
from chargeback_assets.storage.resolutions import resolutions_for_day
from chargeback_assets_tests.stages.test_usage import DAY, gathered_scope, server

__all__ = ["server"]


def test_each_kafka_cluster_is_resolved_once_and_its_lines_share_the_result(
    tmp_path, storage, server, monkeypatch
) -> None:
    resolved: Counter[str] = Counter()
    resolve = KafkaHandler.resolve

    def counting(self, line, inventory, usage):
        resolved[line.resource_id] += 1
        return resolve(self, line, inventory, usage)

    monkeypatch.setattr(KafkaHandler, "resolve", counting)
    with gathered_scope(tmp_path, storage, server, RetryBudget(60)) as scope:
        fetch_usage(scope, [DAY])
        outcome = resolve_day(scope, DAY)
        lines = billing_for_day(scope.db, "confluent_cloud", "t1", DAY)
        stored = resolutions_for_day(scope.db, "confluent_cloud", "t1", DAY)
        handler_of = scope.runtime.handler_for
        kafka = [line for line in lines if isinstance(handler_of(line.product_type), KafkaHandler)]
    per_cluster = Counter(line.resource_id for line in kafka)
    assert max(per_cluster.values()) > 1, "the sandbox bills each cluster on several lines"
    assert resolved == Counter(dict.fromkeys(per_cluster, 1))
    assert outcome.resolved == len(stored) and set(stored) >= {line_id(line) for line in kafka}
    for cluster in per_cluster:
        mine = [stored[line_id(line)] for line in kafka if line.resource_id == cluster]
        assert all(resolution is mine[0] for resolution in mine), f"{cluster}: one resolution read back"
    assert any(stored[line_id(line)].metrics_derived for line in kafka), "usage made some owners active"
