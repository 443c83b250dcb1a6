"""Topics: the optional overlay that splits each Kafka cluster's cost lines over its topics."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg

from chargeback_assets.assets.runs import TenantWork, money
from chargeback_assets.constants import TOPICS
from chargeback_assets.resources import ChargebackResource
from chargeback_assets.stages.scope import TenantScope
from chargeback_assets.stages.topic_outputs import TopicOutputsNotPublished, publish_topic_days
from chargeback_assets.stages.topics import attribute_topics_day, fetch_topic_metrics

TOP_TOPICS = 10
TOPIC_OUTPUTS = "topic_outputs"
"""The asset that publishes the topic attribution (the emission retry sensor requests it again)."""

TOPIC_COSTS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("resource_id", "string", description="The Kafka cluster"),
        dg.TableColumn("topic", "string", description="A topic, or UNATTRIBUTED"),
        dg.TableColumn("amount", "decimal", description="Exact amount in the day's billing currency"),
    ]
)


def build_topic_assets(partitions: dg.MultiPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="topic_metrics",
        group_name=TOPICS,
        partitions_def=partitions,
        deps=["billing_lines"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"prometheus", "sqlite"},
        description="Per Kafka cluster and topic: bytes in, bytes out and retained bytes for the day, for "
        "tenants with topic_attribution enabled (others get an empty day). Metrics still failing after the "
        "run's retries are recorded per cluster; a permanent error fails the partition.",
    )
    def topic_metrics(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)

        def fetch(scope: TenantScope, wanted: list[date]) -> None:
            for day in fetch_topic_metrics(scope, wanted):
                if day.failures:
                    context.log.warning(
                        f"{scope.tenant.name} {day.day}: topic metrics unavailable after retries for "
                        f"{sorted(day.failures)}; their lines follow missing_metrics_behavior"
                    )
                work.record(
                    scope.tenant.name,
                    day.day,
                    {
                        "topic_attribution_enabled": day.enabled,
                        "dagster/row_count": day.records,
                        "clusters": day.clusters,
                        "topics": day.topics,
                        "metrics_fetch_failures": len(day.failures),
                    },
                )

        work.run(fetch)
        yield from work.results()

    @dg.asset(
        name="topic_attribution",
        group_name=TOPICS,
        partitions_def=partitions,
        deps=["billing_lines", "topic_metrics"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "sqlite"},
        description="Each Kafka cluster line split over its topics (network by bytes, storage by retained "
        "bytes, CKU/partition/base as configured); a line's topic rows sum exactly to it, or it is recorded "
        "as disabled or skipped. A line that keeps failing is booked to UNATTRIBUTED after "
        "topic_attribution_retry_limit attempts.",
    )
    def topic_attribution(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)

        def attribute(scope: TenantScope, wanted: list[date]) -> None:
            for day in wanted:
                result = attribute_topics_day(scope, day)
                work.record(
                    scope.tenant.name,
                    day,
                    {
                        "topic_attribution_enabled": result.enabled,
                        "dagster/row_count": result.rows,
                        "cluster_lines": result.lines,
                        **money("cluster_cost", result.cluster_cost, result.currency),
                        **money("attributed", result.attributed, result.currency),
                        "lines_by_status": dg.MetadataValue.json(dict(sorted(result.by_status.items()))),
                        "top_topics": topic_costs(result.top_topics(TOP_TOPICS)),
                    },
                )

        work.run(attribute)
        yield from work.results()

    @dg.asset(
        name=TOPIC_OUTPUTS,
        group_name=TOPICS,
        partitions_def=partitions,
        deps=["topic_attribution"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"csv", "prometheus"},
        description="The topic attribution published: topic_attr_{tenant_id}_{date}.csv in each csv "
        "emitter's directory and chargeback_topic_amount series in each prometheus emitter's OpenMetrics "
        "file. Only days whose topic rows reconcile are published (blocking per partition); recorded in "
        "emission_records with pipeline topic_attribution.",
    )
    def topic_outputs(
        context: dg.AssetExecutionContext, chargeback: ChargebackResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        work = TenantWork(context, partitions, chargeback)
        now = datetime.now(UTC)

        def publish(scope: TenantScope, wanted: list[date]) -> None:
            failure: TopicOutputsNotPublished | None = None
            try:
                published = publish_topic_days(scope, wanted, now=now)
            except TopicOutputsNotPublished as exc:
                published, failure = exc.days, exc
            for day in published:
                if day.status in ("blocked", "failed"):
                    continue
                work.record(
                    scope.tenant.name,
                    day.day,
                    {
                        "status": day.status + (f" ({day.note})" if day.note else ""),
                        "dagster/row_count": day.rows,
                        "outputs": "\n".join(day.outputs) or "none",
                    },
                )
            if failure is not None:
                raise failure

        work.run(publish)
        yield from work.results()

    return [topic_metrics, topic_attribution, topic_outputs]


def topic_costs(costs: list[tuple[str, str, object]]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({"resource_id": cluster, "topic": topic, "amount": str(amount)})
            for cluster, topic, amount in costs
        ],
        schema=TOPIC_COSTS_SCHEMA,
    )
