"""``agenttrace worker``: attribution workers in a process of their own, on any machine that reaches the store.

Also the attribution and verdict export options that ``agenttrace collector`` shares with it.
"""

from __future__ import annotations

import signal
import threading

import click


def attribution_options(command):
    """The options of the attribution workers, for ``agenttrace collector`` and ``agenttrace worker``."""
    options = [
        click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
                     help="Failed runs per attribute_batch call (the tracer batches them on its device)."),
        click.option("--batch-wait", default=0.05, show_default=True, type=click.FloatRange(min=0),
                     help="Seconds a worker waits to gather a batch once it has one job."),
        click.option("--attribution-timeout", default=240.0, show_default=True, type=click.FloatRange(min=0.1),
                     help="Seconds one attribute_batch call may take before it counts as failed."),
        click.option("--attribution-attempts", default=3, show_default=True, type=click.IntRange(min=1),
                     help="Attempts per run (retried with exponential backoff); then the job is 'failed' with its error."),
        click.option("--attribution-concurrency", default=None, type=click.IntRange(min=1),
                     help="Attributor calls at once in this process [default: one per worker]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def verdict_export_options(command):
    """``--export-verdicts`` and its headers, for ``agenttrace collector`` and ``agenttrace worker``."""
    command = click.option("--export-verdicts-header", multiple=True, metavar="NAME=VALUE",
                           help="A header sent to every --export-verdicts endpoint (repeatable).")(command)
    return click.option("--export-verdicts", multiple=True, metavar="URL",
                        help="Send each verdict as an OTLP span 'agenttrace.attribution' into the run's trace at this "
                             "endpoint (Phoenix, Jaeger, an OTel Collector): http(s)://host:port[/v1/traces] or "
                             "grpc(s)://host:port (repeatable).")(command)


def attribution_settings(batch_size, batch_wait, attribution_timeout, attribution_attempts,
                         attribution_concurrency) -> dict:
    return dict(batch_size=batch_size, batch_wait_s=batch_wait, attribution_timeout_s=attribution_timeout,
                attribution_attempts=attribution_attempts, attribution_concurrency=attribution_concurrency)


@click.command("worker", help="""Attribute the failed runs that collectors queue in a shared store.

Run it beside collectors that store in PostgreSQL (start those with --attribution-workers 0 to leave all
attribution here), for example on a GPU machine with --attributor tracer. Workers lease jobs (FOR UPDATE
SKIP LOCKED), so any number of worker processes share the queue; a worker killed mid-job loses nothing.
With --export-verdicts, each verdict it stores also goes out as an OTLP span into the run's trace; what is
queued is sent before it exits on SIGTERM or SIGINT.

\b
  agenttrace worker --db postgresql://user:pw@db/agenttrace --attributor tracer -o model=/models/tracer
""")
@click.option("--db", required=True, envvar="AGENTTRACE_DB",
              help="The collectors' store: a postgresql:// URL (or the SQLite file of one collector on this machine).")
@click.option("--attributor", default="cpu", show_default=True, envvar="AGENTTRACE_ATTRIBUTOR",
              help="cpu, openai, tracer or cascade.")
@click.option("--attributor-option", "-o", multiple=True, metavar="KEY=VALUE", help="Option for the attributor.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Worker threads.")
@attribution_options
@verdict_export_options
def worker_command(db, attributor, attributor_option, workers, export_verdicts, export_verdicts_header,
                   **settings) -> None:
    from agenttrace.attribution import AttributorError
    from agenttrace.cli import _options, require_extra

    require_extra("collector", "agenttrace worker")
    if db.startswith(("postgresql://", "postgres://")):
        require_extra("postgres", "a PostgreSQL --db")
    from agenttrace_collector.app import attribution_workers
    from agenttrace_collector.auth import ConfigError
    from agenttrace_collector.config import CollectorConfig
    from agenttrace_collector.metrics import Metrics
    from agenttrace_collector.store import open_store
    from agenttrace_collector.verdict_export import VerdictExporter

    cfg = CollectorConfig(db=db, attributor=attributor, attributor_options=_options(attributor_option),
                          attribution_workers=workers, export_verdicts=list(export_verdicts),
                          export_verdicts_headers=list(export_verdicts_header), **attribution_settings(**settings))
    store, metrics = open_store(db), Metrics()
    try:
        verdicts = VerdictExporter.configured(store, cfg, metrics)
        pool = attribution_workers(store, cfg, metrics, verdicts)
    except (AttributorError, ConfigError) as exc:  # an unknown attributor, a bad model file or URL: say which
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if verdicts is not None:
        verdicts.start()
    pool.start()
    stop.wait()
    pool.stop()
    if verdicts is not None:
        verdicts.close()  # after the workers: their last verdicts are sent too
    store.close()
