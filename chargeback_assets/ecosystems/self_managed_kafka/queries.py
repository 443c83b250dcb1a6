"""Every PromQL query the self-managed Kafka ecosystem issues, in one place.

Kafka's JMX exporter publishes traffic as counters (`..._bytesin_total` only ever grows, and restarts at 0
when a broker restarts), unlike Confluent's export of per-minute delta gauges. So traffic is measured with
`increase(counter[$step])`, which copes with counter resets, rather than `sum_over_time`, which would add up
running totals. The metrics source evaluates each step at its end minus 1 ms, so each step's increase covers
the samples of `[step start, step end)`; PromQL extrapolates an increase to the edges of its range, so the
steps of a day add up to the day's growth to within a fraction of one scrape interval.

Log size is a gauge: `sum(kafka_log_log_size)` is sampled once per step (the latest sample before the step
ends) and the cost model takes the mean of a day's samples. Discovery uses `last_over_time` so that every
broker, topic and principal seen at any time of the discovery window counts, not only those scraped in the
last five minutes before each step's end.

`{}` is where a resource filter would go; these metrics carry no cluster label (one Prometheus per cluster),
so the queries have no `resource_label` and the placeholder is removed.
"""

from __future__ import annotations

from chargeback_assets.engine.models import MetricQuery

BYTES_IN = "kafka_server_brokertopicmetrics_bytesin_total"
BYTES_OUT = "kafka_server_brokertopicmetrics_bytesout_total"
LOG_SIZE = "kafka_log_log_size"
PRINCIPAL_LABEL = "principal"

CLUSTER_BYTES_IN = MetricQuery("cluster_bytes_in", f"sum(increase({BYTES_IN}{{}}[$step]))", ())
CLUSTER_BYTES_OUT = MetricQuery("cluster_bytes_out", f"sum(increase({BYTES_OUT}{{}}[$step]))", ())
CLUSTER_STORAGE_BYTES = MetricQuery("cluster_storage_bytes", f"sum({LOG_SIZE}{{}})", ())
BILLING_QUERIES = (CLUSTER_BYTES_IN, CLUSTER_BYTES_OUT, CLUSTER_STORAGE_BYTES)

DISCOVERY = MetricQuery(
    "discovery",
    f"group by (broker, topic, principal) (last_over_time({BYTES_IN}{{}}[$step]))",
    ("broker", "topic", PRINCIPAL_LABEL),
)

BYTES_IN_PER_PRINCIPAL = MetricQuery(
    "bytes_in_per_principal",
    f"sum by (principal) (increase({BYTES_IN}{{}}[$step]))",
    (PRINCIPAL_LABEL,),
    subject_label=PRINCIPAL_LABEL,
)
BYTES_OUT_PER_PRINCIPAL = MetricQuery(
    "bytes_out_per_principal",
    f"sum by (principal) (increase({BYTES_OUT}{{}}[$step]))",
    (PRINCIPAL_LABEL,),
    subject_label=PRINCIPAL_LABEL,
)
USAGE_QUERIES = (BYTES_IN_PER_PRINCIPAL, BYTES_OUT_PER_PRINCIPAL)
