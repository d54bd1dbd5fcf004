"""An Arize Phoenix server on loopback, started for a test or a benchmark and stopped after it.

``with phoenix_server(executable, workdir) as (base_url, db):`` runs ``phoenix serve`` with its
working directory (and so its SQLite database, ``db``) in ``workdir``, HTTP and gRPC on free
loopback ports, telemetry and external resources off, and any PHOENIX_SQL_DATABASE_URL of the
caller's environment dropped; its output goes to ``workdir/phoenix.log``. The block runs once
``/healthz`` answers 200; OTLP/HTTP traces go to ``f"{base_url}/v1/traces"``. Phoenix is not an
agenttrace dependency: the caller names the executable (arize-phoenix installed in some venv).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from agenttrace.local_collector import free_port

HOST = "127.0.0.1"


@contextmanager
def phoenix_server(executable: str | Path, workdir: str | Path, *,
                   start_timeout_s: float = 120) -> Iterator[tuple[str, Path]]:
    """Yields (base URL, path of Phoenix's SQLite database) while ``phoenix serve`` runs; SIGINT on exit.

    Raises RuntimeError if Phoenix exits before it is healthy and TimeoutError if it is not healthy
    within ``start_timeout_s``; both name the log file.
    """
    workdir = Path(workdir)
    port = free_port(HOST)
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_HOST": HOST, "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(free_port(HOST)), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false"}
    env.pop("PHOENIX_SQL_DATABASE_URL", None)
    base_url = f"http://{HOST}:{port}"
    log_path = workdir / "phoenix.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(executable), "serve"], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + start_timeout_s
            while not _healthy(f"{base_url}/healthz"):
                if proc.poll() is not None:
                    raise RuntimeError(f"phoenix exited with {proc.returncode} before it was healthy; see {log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"phoenix was not healthy within {start_timeout_s:g} s; see {log_path}")
                time.sleep(0.25)
            yield base_url, workdir / "phoenix.db"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
