"""The ``agenttrace`` command line."""

from __future__ import annotations

import functools
import json
import os
import sys

import click
import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agenttrace.extras import MissingExtra, require
from agenttrace.logs import configure as configure_logging
from agenttrace.setup import DEFAULT_ENDPOINT, auth_headers

console = Console()


@click.group(help="""agenttrace: find which agent, at which step, broke a multi-agent LLM run.

\b
Start here:
  agenttrace demo                 see the whole loop on your machine (no GPU, no API key)
  agenttrace collector            run the collector (OTLP on :4318 HTTP and :4317 gRPC)
  agenttrace runs list            list the runs the collector has assembled
  agenttrace runs show RUN_ID     one run's steps and its verdict
  agenttrace attribute FILE.json  attribute one Who&When/TracerTraj-shaped trajectory
  agenttrace eval PATH            score an attributor on labelled data
  agenttrace lessons list         the lessons kept for each agent
  agenttrace inject PATH --out F  make labelled failures from successful runs (fault injection)
  agenttrace train PATH ...       fine-tune a tracer model (GRPO + LoRA)
  agenttrace worker --db URL      attribute queued failed runs in a process of its own (a GPU box)
  agenttrace quarantine list      traces the collector could not process, with the error
""")
@click.version_option(package_name="agenttrace")
def main() -> None:
    configure_logging()


from agenttrace.cli.worker import attribution_options, attribution_settings, verdict_export_options  # noqa: E402


@main.command(help="Run the collector: receives OTLP traces, rebuilds runs, attributes failed ones.")
@click.option("--db", default=None, envvar="AGENTTRACE_DB", show_default="~/.agenttrace/agenttrace.db",
              help="SQLite database file (created if missing), or a postgresql:// URL to store in PostgreSQL "
                   "(needs the postgres extra; tables created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=4318, show_default=True, help="OTLP/HTTP and JSON API port.")
@click.option("--grpc-port", default=4317, show_default=True, help="OTLP/gRPC port; 0 disables gRPC.")
@click.option("--attributor", default="cpu", show_default=True, envvar="AGENTTRACE_ATTRIBUTOR",
              help="Attributor for failed runs: cpu, openai, tracer, or 'none'.")
@click.option("--attributor-option", "-o", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the attributor, e.g. -o model=/models/tracer (repeatable).")
@click.option("--settle", default=0.2, show_default=True, help="Seconds to wait for late spans after a run ends.")
@click.option("--idle-timeout", default=30.0, show_default=True,
              help="Seconds of silence after which an unfinished run is assembled anyway.")
@click.option("--max-body-bytes", default=32 * 1024 * 1024, show_default=True, type=click.IntRange(min=1),
              help="Largest OTLP request body accepted (after decompression); larger ones get HTTP 413.")
@click.option("--max-pending-spans", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Spans queued for commit before new exports get back-pressure (HTTP 503 / gRPC UNAVAILABLE).")
@click.option("--max-pending-bytes", default=256 * 1024 * 1024, show_default=True, type=click.IntRange(min=1),
              help="Bytes held for uploads being read, decoded or queued, across all connections; beyond it new "
                   "exports get back-pressure.")
@click.option("--max-connections", default=1000, show_default=True, type=click.IntRange(min=1),
              help="HTTP connections (and requests in progress) at once; requests beyond get HTTP 503.")
@click.option("--read-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a whole HTTP request (headers and body); slower ones are cut off.")
@click.option("--reassemble-interval", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between assemblies of a trace of 1,000+ spans whose spans keep arriving.")
@click.option("--max-trace-spans", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="A trace with more spans is quarantined ('too large'), not assembled.")
@click.option("--retention", default=None, metavar="DURATION",
              help="Delete runs, spans, verdicts, jobs and lessons older than this (30d, 12h, 90m) in the background.")
@click.option("--redact-secrets", is_flag=True,
              help="Redact API keys, AWS keys, bearer tokens, private key blocks and emails before storing spans.")
@click.option("--redact", "redact_patterns", multiple=True, metavar="REGEX",
              help="A regular expression whose matches are redacted before storing spans (repeatable).")
@click.option("--redact-file", type=click.Path(dir_okay=False), help="A file of --redact expressions, one a line.")
@click.option("--token-file", type=click.Path(dir_okay=False), envvar="AGENTTRACE_TOKEN_FILE",
              help="TOML file of [[tokens]] (token or sha256, scope admin|service|read, service): every request then "
                   "needs 'Authorization: Bearer <token>'. AGENTTRACE_ADMIN_TOKEN adds one admin token.")
@click.option("--insecure", is_flag=True,
              help="Serve without tokens on a non-loopback --host (refused otherwise): only on a trusted network.")
@click.option("--allowed-host", multiple=True, metavar="NAME",
              help="A Host header name to answer besides localhost, 127.0.0.1, [::1] and --host (repeatable; '*' "
                   "for any). Other names get 421, which stops DNS rebinding.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate: HTTPS and gRPC over TLS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key of --tls-cert.")
@click.option("--attribution-workers", default=1, show_default=True, type=click.IntRange(min=0),
              help="Threads attributing failed runs from the queue; 0 leaves them to `agenttrace worker` processes.")
@click.option("--forward", multiple=True, metavar="URL",
              help="Pass every stored export on, unchanged, to this OTLP endpoint: http(s)://host:port[/v1/traces] "
                   "or grpc(s)://host:port (repeatable). Queued and retried; never slows ingest; drops are counted "
                   "(agenttrace_forward_dropped_spans) and logged.")
@click.option("--forward-header", multiple=True, metavar="NAME=VALUE",
              help="A header sent to every --forward endpoint, e.g. 'Authorization=Bearer ...' (repeatable).")
@click.option("--forward-queue", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Exports queued per --forward endpoint; past it new ones are dropped (and counted).")
@verdict_export_options
@attribution_options
def collector(db, host, port, grpc_port, attributor, attributor_option, settle, idle_timeout, max_body_bytes,
              max_pending_spans, max_pending_bytes, max_connections, read_timeout, reassemble_interval,
              max_trace_spans, retention, redact_secrets, redact_patterns, redact_file, token_file, insecure,
              allowed_host, tls_cert, tls_key, attribution_workers, forward, forward_header, forward_queue,
              export_verdicts, export_verdicts_header, **attribution) -> None:
    require_extra("collector", "agenttrace collector")
    if db and db.startswith(("postgresql://", "postgres://")):
        require_extra("postgres", "a PostgreSQL --db")
    from agenttrace.attribution.base import AttributorError
    from agenttrace_collector.app import run
    from agenttrace_collector.auth import ConfigError
    from agenttrace_collector.config import CollectorConfig
    from agenttrace_collector.retention import parse_duration

    try:
        retention_s = parse_duration(retention) if retention else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--retention") from None
    cfg = CollectorConfig(
        host=host, http_port=port, grpc_port=grpc_port or None,
        attributor=None if attributor == "none" else attributor,
        attributor_options=_options(attributor_option), settle_s=settle, idle_timeout_s=idle_timeout,
        max_body_bytes=max_body_bytes, max_pending_spans=max_pending_spans, max_pending_bytes=max_pending_bytes,
        max_connections=max_connections, read_timeout_s=read_timeout, reassemble_interval_s=reassemble_interval,
        max_trace_spans=max_trace_spans, retention_s=retention_s, redact_builtins=redact_secrets,
        redact_patterns=list(redact_patterns), redact_file=redact_file, token_file=token_file,
        admin_token=os.environ.get("AGENTTRACE_ADMIN_TOKEN") or None, insecure=insecure,
        allowed_hosts=list(allowed_host), tls_cert=tls_cert, tls_key=tls_key,
        attribution_workers=attribution_workers, forward=list(forward), forward_headers=list(forward_header),
        forward_queue=forward_queue, export_verdicts=list(export_verdicts),
        export_verdicts_headers=list(export_verdicts_header), **attribution_settings(**attribution),
    )
    if db:
        cfg.db = db
    try:
        run(cfg)
    except (ConfigError, AttributorError) as exc:  # a bad setting or model file: say which
        raise click.ClickException(str(exc)) from None


def require_extra(extra: str, what: str) -> None:
    """A command's optional dependencies, or an error naming the ``pip install`` that brings them."""
    try:
        require(extra, what)
    except MissingExtra as exc:
        raise click.ClickException(str(exc)) from None


def check_access(endpoint: str, resp: httpx.Response) -> None:
    """A clear error when the collector refuses the token (401) or what it may do (403)."""
    if resp.status_code in (401, 403):
        detail = resp.json().get("detail", resp.reason_phrase)
        raise click.ClickException(f"the collector at {endpoint} answered {resp.status_code}: {detail}. "
                                   "Set AGENTTRACE_TOKEN to a token it accepts.")


def _options(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--attributor-option")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def collector_group(group):
    """A command group that talks to a collector: its ``--endpoint`` option becomes the commands' ``obj``."""

    @click.option("--endpoint", default=DEFAULT_ENDPOINT, envvar="AGENTTRACE_ENDPOINT", show_default=True,
                  help="The collector's HTTP address.")
    @click.pass_context
    @functools.wraps(group)
    def with_endpoint(ctx, endpoint) -> None:
        ctx.obj = endpoint.rstrip("/")

    return with_endpoint


@main.group(help="Inspect the runs a collector has assembled.")
@collector_group
def runs() -> None:
    pass


def _get(endpoint: str, path: str, **params):
    return call_collector("GET", endpoint, path, **params)


def call_collector(method: str, endpoint: str, path: str, **params):
    """The JSON answer of one collector API call (``None`` params left out), or a plain CLI error saying why not."""
    try:
        resp = httpx.request(method, f"{endpoint}{path}", params={k: v for k, v in params.items() if v is not None},
                             timeout=10, headers=auth_headers())
    except httpx.ConnectError:
        raise click.ClickException(f"no collector at {endpoint}; start one with `agenttrace collector`") from None
    check_access(endpoint, resp)
    if resp.is_client_error:  # unknown or ambiguous run id, bad filter: the collector says why
        raise click.ClickException(str(resp.json().get("detail", resp.reason_phrase)))
    resp.raise_for_status()
    return resp.json()


@runs.command("list", help="List runs, newest first.")
@click.option("--outcome", type=click.Choice(["success", "failure", "unknown"]), help="Only runs with this outcome.")
@click.option("--service", help="Only runs whose service contains this text (any case).")
@click.option("--name", help="Only runs whose name contains this text (any case).")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def runs_list(endpoint, outcome, service, name, limit, as_json) -> None:
    rows = _get(endpoint, "/api/v1/runs", outcome=outcome, service=service, name=name, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("run", "name", "service", "outcome", "ended as", "steps", "blamed")
    for r in rows:
        blamed = f"{r['agent']} @ step {r['step']}" if r.get("agent") is not None else ""
        table.add_row(r["run_id"][:12], Text(r["name"] or ""), Text(r["service"] or ""), r["outcome"],
                      r["termination"], str(r["n_steps"]), Text(blamed))
    console.print(table)


@runs.command("show", help="Show one run's steps and verdict. RUN_ID may be a unique prefix (as `runs list` shows).")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the trajectory JSON.")
@click.pass_obj
def runs_show(endpoint, run_id, as_json) -> None:
    from agenttrace.models import Attribution, Trajectory
    from agenttrace.cli.render import print_trajectory

    detail = _get(endpoint, f"/api/v1/runs/{run_id}")
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    verdicts = [Attribution.model_validate(a) for a in detail["attributions"]]
    print_trajectory(console, Trajectory.model_validate(detail["trajectory"]), verdicts[-1] if verdicts else None,
                     detail.get("job"))


@main.command(help="Run the whole loop once: collector, a multi-agent run with a seeded error, its verdict, "
                   "the feedback, and a second run that uses it.")
@click.option("--keep", is_flag=True, help="Keep the demo database and print its path.")
def demo(keep) -> None:
    require_extra("collector", "agenttrace demo")
    from agenttrace.demo import main as run_demo

    sys.exit(run_demo(console, keep=keep))


def _register() -> None:
    from agenttrace.cli.eval import attribute_command, eval_command
    from agenttrace.cli.export import export_command
    from agenttrace.cli.inject import inject_command
    from agenttrace.cli.lessons import lessons_group
    from agenttrace.cli.quarantine import quarantine_group
    from agenttrace.cli.train import train_command
    from agenttrace.cli.worker import worker_command
    from agenttrace.suite.cli import suite_group

    for command in (attribute_command, eval_command, export_command, inject_command, lessons_group, train_command,
                    suite_group, worker_command, quarantine_group):
        main.add_command(command)


_register()
