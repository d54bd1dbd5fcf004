"""Starting a collector as a child process on loopback, and stopping it: for the demo, tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalCollector:
    """``with LocalCollector(db) as c: c.endpoint`` - a real collector process, stopped on exit.

    With ``token_file`` the collector needs tokens; ``token`` is the one this object's own calls send
    (readiness, ``wait_run``). With ``tls=(cert, key)`` it serves HTTPS and gRPC over TLS, and this
    object trusts ``cert``.
    """

    def __init__(self, db: str | Path, *, port: int | None = None, grpc_port: int | None = None,
                 attributor: str = "cpu", extra_args: tuple[str, ...] = (), log_file: Path | None = None,
                 env: dict[str, str] | None = None, token_file: Path | None = None, token: str | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.db = str(db)
        self.port = port or free_port()
        self.grpc_port = grpc_port if grpc_port is not None else free_port()
        self.attributor = attributor
        self.extra_args = extra_args
        self.log_file = log_file
        self.env = env
        self.token_file = token_file
        self.tls = tls
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs) -> httpx.Response:
        """GET ``path`` from the collector with this object's token, trusting its TLS certificate."""
        verify = ssl.create_default_context(cafile=self.tls[0]) if self.tls else True
        return httpx.get(f"{self.endpoint}{path}", headers=self.headers, verify=verify, **kwargs)

    def start(self, timeout: float = 30.0) -> LocalCollector:
        cmd = [sys.executable, "-m", "agenttrace_collector", "--db", self.db, "--port", str(self.port),
               "--grpc-port", str(self.grpc_port), "--attributor", self.attributor, *self.extra_args]
        if self.token_file:
            cmd += ["--token-file", str(self.token_file)]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        env = {**os.environ, "AGENTTRACE_LOG_FORMAT": "json", **(self.env or {})}
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}; see {self.log_file or 'its output'}")
            try:
                if self.get("/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"collector not ready on {self.endpoint} after {timeout}s")

    def wait_run(self, run_id: str, timeout: float = 30.0, *, verdict: bool = False):
        """The run's trajectory once assembled (and, with ``verdict``, attributed): ``(Trajectory, [Attribution])``."""
        from agenttrace.models import Attribution, Trajectory

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.get(f"/api/v1/runs/{run_id}", timeout=5)
            if resp.status_code == 200:
                doc = resp.json()
                if doc["attributions"] or not verdict:
                    return (Trajectory.model_validate(doc["trajectory"]),
                            [Attribution.model_validate(a) for a in doc["attributions"]])
            time.sleep(0.1)
        raise TimeoutError(f"run {run_id} not {'attributed' if verdict else 'assembled'} within {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> LocalCollector:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
