"""Prometheus metrics at ``/metrics`` (the standard ``prometheus-client`` library), one registry per collector.

Counters and histograms are updated where things happen (receiver, ingest writer, pipeline, workers);
gauges that describe state (ingest queue depth, assembly backlog, attribution jobs by state) are read
from their owners when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _StateGauges(Collector):
    def __init__(self, read: Callable[[], dict[str, float | dict[str, float]]]) -> None:
        self.read = read

    def collect(self):
        for name, value in self.read().items():
            if isinstance(value, dict):  # one gauge with a label per key
                family = GaugeMetricFamily(name, name.replace("_", " "), labels=["state"])
                for label, v in value.items():
                    family.add_metric([label], v)
            else:
                family = GaugeMetricFamily(name, name.replace("_", " "), value=value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.spans_received = Counter("agenttrace_spans_received", "Spans in OTLP exports that decoded", registry=r)
        self.spans_stored = Counter("agenttrace_spans_stored", "Spans committed to the store", registry=r)
        self.requests_rejected = Counter("agenttrace_otlp_requests_rejected", "OTLP exports answered with an error",
                                         ["reason"], registry=r)
        self.runs_assembled = Counter("agenttrace_runs_assembled", "Runs assembled (again when late spans come)",
                                      ["outcome"], registry=r)
        self.traces_quarantined = Counter("agenttrace_traces_quarantined", "Traces whose processing raised",
                                          registry=r)
        self.verdict_latency = Histogram("agenttrace_attribution_latency_seconds",
                                         "From a failed run's end to its verdict being stored",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.attributor_seconds = Histogram("agenttrace_attributor_call_seconds",
                                            "Time of one attribute_batch call", ["attributor"],
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.forwarded_spans = Counter("agenttrace_forward_sent_spans", "Spans delivered to a forward or verdict "
                                       "target", ["stream", "target"], registry=r)
        self.forward_dropped_spans = Counter("agenttrace_forward_dropped_spans", "Spans a forward or verdict target "
                                             "did not get (queue_full, unreachable, rejected)",
                                             ["stream", "target", "reason"], registry=r)

    def watch(self, read: Callable[[], dict[str, float | dict[str, float]]]) -> None:
        """Gauges computed at scrape time: ``read()`` -> {metric name: value, or {state label: value}}."""
        self.registry.register(_StateGauges(read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
