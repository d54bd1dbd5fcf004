"""docs/otel-collector.md: its OpenTelemetry Collector configurations are valid as far as can be checked without
the otelcol binary, and agenttrace accepts what the collector's ``otlphttp`` exporter sends."""

from __future__ import annotations

import gzip
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
import yaml
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from agenttrace.local_collector import LocalCollector
from tests.otlp_helpers import export

DOC = Path(__file__).resolve().parent.parent / "docs" / "otel-collector.md"
ANY = object()  # a map whose keys are the user's (headers)
LEAF = None  # a scalar or list setting

# The settings each component documents (its README and testdata/config.yaml in opentelemetry-collector and
# opentelemetry-collector-contrib); a key outside them makes otelcol refuse the whole configuration.
RETRY = dict.fromkeys(["enabled", "initial_interval", "randomization_factor", "multiplier", "max_interval",
                       "max_elapsed_time"])
QUEUE = dict.fromkeys(["enabled", "num_consumers", "queue_size", "blocking", "sizer", "storage"])
TLS = dict.fromkeys(["insecure", "insecure_skip_verify", "ca_file", "cert_file", "key_file", "server_name_override",
                     "min_version", "max_version"])
BATCHER = dict.fromkeys(["enabled", "flush_timeout", "sizer", "min_size", "max_size"])
OTLP_GRPC_CLIENT = {"endpoint": LEAF, "tls": TLS, "timeout": LEAF, "compression": LEAF, "headers": ANY,
                    "retry_on_failure": RETRY, "sending_queue": QUEUE, "batcher": BATCHER, "balancer_name": LEAF,
                    "keepalive": dict.fromkeys(["time", "timeout", "permit_without_stream"]), "auth": ANY}
SCHEMA = {
    "receivers": {"otlp": {"protocols": {
        "grpc": dict.fromkeys(["endpoint", "transport", "max_recv_msg_size_mib", "max_concurrent_streams",
                               "include_metadata", "tls", "keepalive", "auth"]),
        "http": dict.fromkeys(["endpoint", "max_request_body_size", "include_metadata", "cors", "tls", "auth",
                               "traces_url_path"])}}},
    "processors": {
        "batch": dict.fromkeys(["timeout", "send_batch_size", "send_batch_max_size", "metadata_keys",
                                "metadata_cardinality_limit"]),
        "memory_limiter": dict.fromkeys(["check_interval", "limit_mib", "spike_limit_mib", "limit_percentage",
                                         "spike_limit_percentage"]),
    },
    "exporters": {
        "otlphttp": {"endpoint": LEAF, "traces_endpoint": LEAF, "metrics_endpoint": LEAF, "logs_endpoint": LEAF,
                     "tls": TLS, "timeout": LEAF, "read_buffer_size": LEAF, "write_buffer_size": LEAF,
                     "sending_queue": QUEUE, "retry_on_failure": RETRY, "batcher": BATCHER, "headers": ANY,
                     "compression": LEAF, "encoding": LEAF},
        "otlp": OTLP_GRPC_CLIENT,
        "loadbalancing": {
            "routing_key": LEAF, "protocol": {"otlp": OTLP_GRPC_CLIENT}, "timeout": LEAF,
            "sending_queue": QUEUE, "retry_on_failure": RETRY,
            "resolver": {"static": {"hostnames": LEAF},
                         "dns": dict.fromkeys(["hostname", "port", "interval", "timeout"]),
                         "k8s": dict.fromkeys(["service", "ports", "timeout", "return_hostnames"])}},
    },
}
ROUTING_KEYS = {"traceID", "service", "resource", "metric", "streamID", "attributes"}
AGENTTRACE_COMPRESSION = {"gzip", "none"}


def configs() -> list[dict]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def unknown_keys(config, schema, path: str) -> list[str]:
    if schema is ANY or schema is LEAF:
        return []
    assert isinstance(config, dict), f"{path} must be a map"
    found = []
    for key, value in config.items():
        if key not in schema:
            found.append(f"{path}.{key}")
        else:
            found += unknown_keys(value, schema[key], f"{path}.{key}")
    return found


@pytest.mark.parametrize("config", configs(), ids=["fan-out", "loadbalancing"])
def test_the_documented_config_uses_only_documented_settings_and_wires_every_component(config):
    assert set(config) <= {"receivers", "processors", "exporters", "extensions", "connectors", "service"}
    for kind in ("receivers", "processors", "exporters"):
        for component_id, settings in config[kind].items():
            component_type = component_id.split("/", 1)[0]
            assert component_type in SCHEMA[kind], f"{kind}: {component_id} is not a component documented here"
            assert unknown_keys(settings or {}, SCHEMA[kind][component_type], component_id) == []
    [(name, pipeline)] = config["service"]["pipelines"].items()
    assert name == "traces"
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) == set(config[kind]), f"every {kind[:-1]} defined is used, and only those"
    assert pipeline["processors"][0] == "memory_limiter"  # the collector's docs: memory_limiter first


def test_agenttrace_targets_are_configured_as_agenttrace_reads_them():
    fan_out, balanced = configs()
    to_agenttrace = fan_out["exporters"]["otlphttp/agenttrace"]
    assert to_agenttrace["compression"] in AGENTTRACE_COMPRESSION
    assert to_agenttrace["headers"]["Authorization"].startswith("Bearer ")
    lb = balanced["exporters"]["loadbalancing/agenttrace"]
    assert lb["routing_key"] == "traceID" and lb["routing_key"] in ROUTING_KEYS
    assert list(lb["resolver"]) == ["static"]  # the exporter takes one resolver
    assert all(host.endswith(":4317") for host in lb["resolver"]["static"]["hostnames"])  # agenttrace's gRPC port
    assert lb["protocol"]["otlp"]["compression"] in AGENTTRACE_COMPRESSION


# ---- what the otlphttp exporter sends: protobuf, gzip, its User-Agent and the configured headers ----------------
TOKEN = "otel-collector-token-0001"
OTLPHTTP_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                    "User-Agent": "OpenTelemetry Collector Contrib/0.116.0 (linux/amd64)",
                    "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def agenttrace(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("otelcol")
    (workdir / "tokens.toml").write_text(f'[[tokens]]\ntoken = "{TOKEN}"\nscope = "admin"\n')
    with LocalCollector(workdir / "agenttrace.db", attributor="none", token_file=workdir / "tokens.toml",
                        token=TOKEN, log_file=workdir / "collector.log") as c:
        yield c


def test_agenttrace_stores_an_otlphttp_export_and_answers_in_protobuf(agenttrace):
    resp = httpx.post(f"{agenttrace.endpoint}/v1/traces", content=gzip.compress(export(9001, spans=4)),
                      headers=OTLPHTTP_HEADERS)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-protobuf"
    ExportTraceServiceResponse.FromString(resp.content)  # what the exporter decodes
    with sqlite3.connect(f"file:{agenttrace.db}?mode=ro", uri=True) as db:
        stored = db.execute("SELECT count(*) FROM spans WHERE trace_id = ?", ((9001).to_bytes(16, "big"),)).fetchone()
    assert stored == (4,)


def test_an_unsupported_compression_is_refused_with_a_status_the_exporter_logs(agenttrace):
    resp = httpx.post(f"{agenttrace.endpoint}/v1/traces", content=export(9002),
                      headers=OTLPHTTP_HEADERS | {"Content-Encoding": "zstd"})
    assert resp.status_code == 400  # otlphttp does not retry a 400: a configuration error, shown in its log
    status = status_pb2.Status.FromString(resp.content)
    assert "unsupported content-encoding 'zstd'" in status.message
