"""Who may use a collector: bearer tokens and their scopes on every endpoint, the Host allow-list, security
headers, the refusal to serve an open collector beyond loopback, TLS, and the SDK and CLI sending their token.

One collector process with tokens serves the whole matrix; the tests that need other settings start their own.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import agenttrace
from agenttrace.cli import main as cli
from agenttrace.local_collector import LocalCollector, free_port
from agenttrace_collector.auth import ConfigError, Tokens
from tests.conftest import flush
from tests.test_ui import browser, open_view, page  # noqa: F401 - the headless Chromium fixtures

ADMIN = "admin-token-for-the-tests-0001"
READER = "read-only-token-for-the-tests-0002"
ALPHA = "alpha-service-token-0003"
BETA = "beta-service-token-0004"
WRONG = "a-token-nobody-configured-0005"
TOKEN_FILE = f"""
[[tokens]]
name = "ops"
sha256 = "{hashlib.sha256(ADMIN.encode()).hexdigest()}"
scope = "admin"

[[tokens]]
token = "{READER}"
scope = "read"

[[tokens]]
token = "{ALPHA}"
service = "alpha"

[[tokens]]
token = "{BETA}"
service = "beta"
"""
ROOT = Path(__file__).resolve().parent.parent
OTLP_HEADER_VARIABLES = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
CALLERS = {"no token": None, "wrong token": WRONG, "other service": BETA, "right service": ALPHA, "admin": ADMIN}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens.toml"
    path.write_text(TOKEN_FILE)
    return path


@pytest.fixture(scope="module")
def collector(tmp_path_factory, token_file):
    workdir = tmp_path_factory.mktemp("auth-collector")
    with LocalCollector(workdir / "agenttrace.db", token_file=token_file, token=ADMIN, log_file=workdir / "collector.log",
                        extra_args=("--settle", "0.2", "--allowed-host", "collector.internal")) as c:
        yield c


def failing_run(name: str) -> str:
    """One run whose answer misses the expected one (so it is attributed); returns its id once exported."""
    with agenttrace.run(name, task="Add 2 and 2.", expected="4") as run:
        with agenttrace.agent_step("Adder", input="Add 2 and 2.") as step:
            step.output("2 + 2 = 5")
        run.finish("5")
    flush()
    return run.run_id


# An app of one service, in its own process (a process has one service name): it sends a failing run with
# the token from its environment and prints the verdict its feedback client receives.
APP = """
import json, queue, sys
import agenttrace
from tests.test_auth import failing_run
agenttrace.instrument(endpoint=sys.argv[1], service_name=sys.argv[2], frameworks=[])
verdicts = queue.Queue()
agenttrace.on_feedback(verdicts.put)
run_id = failing_run(sys.argv[2] + "-run")
verdict = verdicts.get(timeout=60)
print(json.dumps({"run_id": run_id, "verdict_run_id": verdict.run_id, "agent": verdict.agent}))
"""


def start_app(collector: LocalCollector, service: str, env: dict[str, str]) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in ("AGENTTRACE_TOKEN", *OTLP_HEADER_VARIABLES)}
    return subprocess.Popen([sys.executable, "-c", APP, collector.endpoint, service], cwd=ROOT,
                            env=clean | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def app_result(app: subprocess.Popen) -> dict:
    out, err = app.communicate(timeout=90)
    assert app.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(collector):
    """A failed, attributed run of service alpha and one of beta, each sent by an app with its service's token:
    alpha's in AGENTTRACE_TOKEN, beta's in the standard OTEL_EXPORTER_OTLP_HEADERS."""
    apps = {"alpha": start_app(collector, "alpha", {"AGENTTRACE_TOKEN": ALPHA}),
            "beta": start_app(collector, "beta", {"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{BETA}"})}
    results = {service: app_result(app) for service, app in apps.items()}
    for service, result in results.items():
        assert result["verdict_run_id"] == result["run_id"] and result["agent"] == "Adder", service
    return {service: result["run_id"] for service, result in results.items()}


def otlp_request(service: str) -> trace_service_pb2.ExportTraceServiceRequest:
    span = trace_pb2.Span(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="probe",
                          start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000)
    service_name = common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=service))
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource={"attributes": [service_name]}, scope_spans=[trace_pb2.ScopeSpans(spans=[span])])])


# ---- the matrix: every endpoint x every kind of caller ------------------------------------------------------

HTTP_ROUTES = {
    # name: (method, path with {alpha} for alpha's run id, status per caller in CALLERS' order)
    "health (status only without a token, for probes)": ("GET", "/api/v1/health", (200, 401, 200, 200, 200)),
    "runs list": ("GET", "/api/v1/runs", (401, 401, 200, 200, 200)),
    "run": ("GET", "/api/v1/runs/{alpha}", (401, 401, 404, 200, 200)),
    "run by id prefix": ("GET", "/api/v1/runs/{alpha_prefix}", (401, 401, 404, 200, 200)),
    "run as Who&When": ("GET", "/api/v1/runs/{alpha}/whowhen", (401, 401, 404, 200, 200)),
    "feedback": ("GET", "/api/v1/feedback?service=alpha", (401, 401, 403, 200, 200)),
    "lessons": ("GET", "/api/v1/lessons", (401, 401, 200, 200, 200)),
    "delete lessons": ("DELETE", "/api/v1/lessons?agent=nobody-has-this-name", (401, 401, 403, 403, 200)),
    "openapi schema": ("GET", "/openapi.json", (401, 401, 200, 200, 200)),
    "docs (disabled: Swagger UI would come from a CDN)": ("GET", "/docs", (401, 401, 404, 404, 404)),
    "ui page (static, no data)": ("GET", "/ui/", (200, 200, 200, 200, 200)),
    "ui script": ("GET", "/ui/app.js", (200, 200, 200, 200, 200)),
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("route", list(HTTP_ROUTES))
def test_http_endpoint_answers_each_caller_as_its_scope_allows(collector, runs, route, caller):
    method, path, statuses = HTTP_ROUTES[route]
    expected = dict(zip(CALLERS, statuses))[caller]
    url = collector.endpoint + path.format(alpha=runs["alpha"], alpha_prefix=runs["alpha"][:10])
    resp = httpx.request(method, url, headers=bearer(CALLERS[caller]), timeout=10)
    assert resp.status_code == expected, resp.text
    if expected == 401:
        assert resp.headers["www-authenticate"].startswith("Bearer")
    if route == "run" and expected == 200:
        assert resp.json()["trajectory"]["service"] == "alpha" and resp.json()["attributions"]


def test_health_without_a_token_says_only_the_status_and_with_one_the_whole_report(collector):
    probe = httpx.get(f"{collector.endpoint}/api/v1/health", timeout=10)
    assert probe.status_code == 200 and probe.json() == {"status": "ok"}  # what a load balancer or Kubernetes sees
    report = httpx.get(f"{collector.endpoint}/api/v1/health", headers=bearer(READER), timeout=10)
    assert report.status_code == 200 and report.json()["status"] == "ok"
    assert {"committed_spans", "attributor", "backlog_traces", "lag_s", "quarantined_traces"} <= set(report.json())
    wrong = httpx.get(f"{collector.endpoint}/api/v1/health", headers=bearer(WRONG), timeout=10)
    assert wrong.status_code == 401  # a bad token is refused, not taken for a probe


@pytest.mark.parametrize("caller", list(CALLERS))
def test_otlp_http_export_of_alpha_spans_needs_alphas_token_or_admin(collector, caller):
    expected = dict(zip(CALLERS, (401, 401, 403, 200, 200)))[caller]
    resp = httpx.post(f"{collector.endpoint}/v1/traces", content=otlp_request("alpha").SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf", **bearer(CALLERS[caller])}, timeout=10)
    assert resp.status_code == expected, resp.text
    if expected == 403:
        assert "'beta' only" in resp.content.decode(errors="replace")


@pytest.mark.parametrize("caller", list(CALLERS))
def test_otlp_grpc_export_of_alpha_spans_needs_alphas_token_or_admin(collector, caller):
    expected = dict(zip(CALLERS, (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OK, grpc.StatusCode.OK)))[caller]
    token = CALLERS[caller]
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        try:
            stub.Export(otlp_request("alpha"), metadata=[("authorization", f"Bearer {token}")] if token else [],
                        timeout=10)
            status = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            status = exc.code()
    assert status == expected


def test_a_read_only_token_reads_every_service_but_cannot_export(collector, runs):
    listed = httpx.get(f"{collector.endpoint}/api/v1/runs", headers=bearer(READER), timeout=10).json()
    assert {runs["alpha"], runs["beta"]} <= {r["run_id"] for r in listed}
    resp = httpx.post(f"{collector.endpoint}/v1/traces", content=otlp_request("alpha").SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf", **bearer(READER)}, timeout=10)
    assert resp.status_code == 403 and "read-only" in resp.content.decode(errors="replace")


def test_a_service_token_never_sees_another_services_runs_verdicts_or_lessons(collector, runs):
    def get(path, **params):
        resp = httpx.get(f"{collector.endpoint}/api/v1{path}", params=params, headers=bearer(BETA), timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert {r["run_id"] for r in get("/runs")} == {runs["beta"]}
    assert get("/runs", service="alpha") == []
    assert {a["run_id"] for a in get("/feedback")["attributions"]} == {runs["beta"]}
    assert {lesson["run_id"] for lesson in get("/lessons")} == {runs["beta"]}
    admin_lessons = httpx.get(f"{collector.endpoint}/api/v1/lessons", headers=bearer(ADMIN), timeout=10).json()
    assert {runs["alpha"], runs["beta"]} <= {lesson["run_id"] for lesson in admin_lessons}


# ---- Host allow-list and security headers --------------------------------------------------------------------

@pytest.mark.parametrize("host, status", [
    ("evil.example", 421), ("127.0.0.1.evil.example:80", 421), ("localhost", 200), ("localhost:8080", 200),
    ("127.0.0.1:4318", 200), ("[::1]:4318", 200), ("collector.internal:4318", 200), ("COLLECTOR.internal", 200),
])
def test_only_allowed_host_names_are_answered_which_defeats_dns_rebinding(collector, host, status):
    resp = httpx.get(f"{collector.endpoint}/api/v1/runs", headers={"Host": host, **bearer(ADMIN)}, timeout=10)
    assert resp.status_code == status
    if status == 421:
        assert "--allowed-host" in resp.json()["detail"]


@pytest.mark.parametrize("path, token", [("/ui/", None), ("/ui/app.js", None), ("/api/v1/runs", ADMIN),
                                         ("/api/v1/runs", None), ("/v1/traces", ADMIN)])
def test_every_response_carries_the_security_headers(collector, path, token):
    headers = httpx.get(f"{collector.endpoint}{path}", headers=bearer(token), timeout=10).headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_tokens_never_reach_the_log(collector, runs):
    log = collector.log_file.read_text()
    assert "http.unauthenticated" in log  # the matrix's refusals are logged, without what was presented
    assert all(token not in log for token in (ADMIN, READER, ALPHA, BETA, WRONG))


# ---- the SDK, the CLI and the UI with tokens -----------------------------------------------------------------

def test_the_sdk_sends_the_token_of_the_traces_headers_variable_and_gets_its_verdict(collector, runs):
    # runs: AGENTTRACE_TOKEN and OTEL_EXPORTER_OTLP_HEADERS worked; the traces-only variable, not URL-encoded:
    result = app_result(start_app(collector, "alpha", {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization=Bearer {ALPHA}"}))
    assert result["verdict_run_id"] == result["run_id"] and result["agent"] == "Adder"


def test_an_app_without_a_token_gets_nothing_in(collector, runs):
    app = start_app(collector, "alpha", {})
    with pytest.raises(subprocess.TimeoutExpired):  # its spans are refused, so no verdict ever comes
        app.communicate(timeout=8)
    app.kill()
    _, err = app.communicate()
    assert "401" in err


def test_cli_commands_send_agenttrace_token(collector, runs):
    runner = CliRunner()
    args = ["runs", "--endpoint", collector.endpoint, "list", "--json"]
    refused = runner.invoke(cli, args, env={"AGENTTRACE_TOKEN": ""})
    assert refused.exit_code == 1 and "answered 401" in refused.output and "AGENTTRACE_TOKEN" in refused.output

    listed = runner.invoke(cli, args, env={"AGENTTRACE_TOKEN": BETA})
    assert listed.exit_code == 0, listed.output
    assert runs["beta"] in listed.output and runs["alpha"] not in listed.output

    cleared = runner.invoke(cli, ["lessons", "--endpoint", collector.endpoint, "clear", "--agent",
                                  "nobody-has-this-name"], env={"AGENTTRACE_TOKEN": BETA})
    assert cleared.exit_code == 1 and "answered 403" in cleared.output and "admin" in cleared.output


def test_the_ui_asks_for_a_token_and_keeps_it_out_of_urls(collector, runs, page):  # noqa: F811
    open_view(page, f"{collector.endpoint}/ui/", "token")
    assert page.locator("#token-message").inner_text() == "This collector needs a token."

    page.fill("#token-input", WRONG)
    page.click("#token-form button")
    page.wait_for_selector("#token-message:text-is('The collector did not accept that token.')")

    page.fill("#token-input", BETA)
    page.click("#token-form button")
    page.wait_for_selector('#view[data-route="/runs"]')
    assert page.locator("tr.run").evaluate_all("rows => rows.map(r => r.dataset.runId)") == [runs["beta"]]
    assert BETA not in page.url and page.evaluate("sessionStorage.getItem('agenttrace.token')") == BETA

    open_view(page, f"{collector.endpoint}/ui/#/runs/{runs['alpha']}", f"/runs/{runs['alpha']}")
    assert "404" in page.locator("#load-error").inner_text()  # another service's run is not there for beta

    page.click("#forget-token")
    page.wait_for_selector('#view[data-route="token"]')
    assert page.evaluate("sessionStorage.getItem('agenttrace.token')") is None


# ---- starting: exposure, token files, TLS ---------------------------------------------------------------------

def start_collector(tmp_path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs the collector command expecting it to refuse to start."""
    cmd = [sys.executable, "-m", "agenttrace_collector", "--db", str(tmp_path / "db.sqlite"), "--port",
           str(free_port()), "--grpc-port", "0", "--attributor", "none", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_an_open_collector_on_a_non_loopback_address_refuses_to_start(tmp_path):
    refused = start_collector(tmp_path, "--host", "0.0.0.0")
    assert refused.returncode == 1
    assert "refusing to serve on 0.0.0.0 without tokens" in refused.stderr and "--insecure" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_insecure_serves_an_open_collector_on_every_interface(tmp_path):
    with LocalCollector(tmp_path / "db.sqlite", attributor="none", log_file=tmp_path / "collector.log",
                        extra_args=("--host", "0.0.0.0", "--insecure")) as c:
        assert httpx.get(f"{c.endpoint}/api/v1/runs", timeout=10).status_code == 200


@pytest.mark.parametrize("entry, message", [
    ('token = "short"\nscope = "admin"', "at least 16 characters"),
    (f'token = "{ALPHA}"\nscope = "owner"', "scope must be one of admin, service, read"),
    (f'token = "{ALPHA}"\nscope = "service"', "needs a service"),
    (f'token = "{ALPHA}"\nscope = "admin"\nservice = "alpha"', "takes no service"),
    (f'token = "{ALPHA}"\nsha256 = "00"\nscope = "admin"', "either token or sha256"),
    ('sha256 = "abc"\nscope = "admin"', "64 hex digits"),
    (f'token = "{ALPHA}"\nservice = "alpha"\nexpires = 3', "unknown key(s) expires"),
    (f'token = "{ALPHA}"\nservice = "alpha"\n[[tokens]]\ntoken = "{ALPHA}"\nscope = "admin"', "configured twice"),
    ('token = "unterminated', "not valid TOML"),
])
def test_a_bad_token_file_is_refused_with_what_is_wrong(tmp_path, entry, message):
    path = tmp_path / "tokens.toml"
    path.write_text("[[tokens]]\n" + entry)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Tokens.configured(str(path), None)
    refused = start_collector(tmp_path, "--token-file", str(path))
    assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr


def test_an_admin_token_from_the_environment_alone_secures_a_collector(tmp_path):
    with LocalCollector(tmp_path / "db.sqlite", attributor="none", log_file=tmp_path / "collector.log", token=ADMIN,
                        env={"AGENTTRACE_ADMIN_TOKEN": ADMIN}) as c:
        assert httpx.get(f"{c.endpoint}/api/v1/runs", timeout=10).status_code == 401
        assert c.get("/api/v1/runs", timeout=10).status_code == 200


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for localhost and 127.0.0.1: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_carries_spans_over_https_and_grpc_and_the_api_over_https(tmp_path, token_file, certificate, monkeypatch):
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would trust these instead of certificate_file
        monkeypatch.delenv(variable, raising=False)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    cert, _ = certificate
    with LocalCollector(tmp_path / "db.sqlite", token_file=token_file, token=ADMIN, tls=certificate,
                        log_file=tmp_path / "collector.log", extra_args=("--settle", "0.2")) as c:
        assert c.endpoint.startswith("https://")
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(f"http://127.0.0.1:{c.port}/api/v1/health", headers=bearer(ADMIN), timeout=5)
        exporters = {
            "https": HttpExporter(endpoint=f"{c.endpoint}/v1/traces", certificate_file=str(cert),
                                  headers=bearer(ADMIN)),
            "grpc+tls": GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", headers=(("authorization", f"Bearer {ADMIN}"),),
                                     credentials=grpc.ssl_channel_credentials(cert.read_bytes())),
        }
        for transport, exporter in exporters.items():
            agenttrace.instrument(endpoint=c.endpoint, service_name="alpha", frameworks=[], exporter=exporter)
            try:
                run_id = failing_run(f"over-{transport}")
            finally:
                agenttrace.uninstrument()
            traj, _ = c.wait_run(run_id)
            assert traj.name == f"over-{transport}"


def test_a_tls_certificate_that_cannot_be_loaded_is_refused(tmp_path, certificate):
    cert, _ = certificate
    refused = start_collector(tmp_path, "--tls-cert", str(cert), "--tls-key", str(cert))
    assert refused.returncode == 1 and "cannot load the TLS certificate" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "needs both --tls-cert and --tls-key" in start_collector(tmp_path, "--tls-cert", str(cert)).stderr
