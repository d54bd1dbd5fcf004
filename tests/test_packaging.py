"""The package path: the wheel, installed in fresh virtual environments, as a user of the package index would.

``pip install agenttrace`` is the SDK alone (commands that need the collector say which extra brings it);
``pip install 'agenttrace[collector]'`` runs ``agenttrace demo`` and the README snippet against its own
``agenttrace collector``, with nothing from this clone, and without torch. Installs go through uv and its
cache, so after the first run this takes well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from uv import find_uv_bin

from agenttrace.local_collector import free_port
from tests.test_readme_snippet import check_snippet_output, readme_snippet, run_script

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)


def uv(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([find_uv_bin(), *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--wheel", "--out-dir", str(out), str(ROOT))
    [built] = out.glob("agenttrace-*.whl")
    return built


def fresh_venv(where: Path, requirement: str) -> Path:
    """A new virtual environment with ``requirement`` installed; its bin/ folder."""
    uv("venv", "--quiet", "--python", sys.executable, str(where))
    uv("pip", "install", "--quiet", "--python", str(where / "bin" / "python"), requirement)
    return where / "bin"


def installed(bin_dir: Path) -> set[str]:
    listing = uv("pip", "list", "--python", str(bin_dir / "python"), "--format", "freeze")
    return {line.split("==")[0].lower() for line in listing.splitlines()}


def command(bin_dir: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "agenttrace"), *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, **(env or {})})


def test_the_sdk_alone_names_the_extra_that_commands_need(wheel, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", str(wheel))
    assert "agenttrace" in installed(bin_dir) and not {"fastapi", "uvicorn", "torch"} & installed(bin_dir)
    for args in (["demo"], ["collector"]):
        done = command(bin_dir, *args, cwd=tmp_path)
        assert done.returncode == 1
        assert "pip install 'agenttrace[collector]'" in done.stderr and "Traceback" not in done.stderr
    sdk = subprocess.run([str(bin_dir / "python"), "-c", "import agenttrace; print(agenttrace.flush())"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert sdk.stdout == "True\n", sdk.stderr


def test_the_collector_extra_runs_the_demo_and_the_readme_snippet(wheel, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv", f"agenttrace[collector] @ {wheel.as_uri()}")
    assert "torch" not in installed(bin_dir)

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    demo = command(bin_dir, "demo", cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "the loop closed: failure -> verdict -> lesson -> success" in demo.stdout
    assert list(scratch.iterdir()) == []  # the demo's database and log are gone

    port = free_port()
    collector = subprocess.Popen([str(bin_dir / "agenttrace"), "collector", "--db", str(tmp_path / "c.db"),
                                  "--port", str(port), "--grpc-port", "0", "--settle", "0.2"],
                                 cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_healthy(endpoint)
        check_snippet_output(run_script(readme_snippet(), endpoint, tmp_path, python=str(bin_dir / "python"),
                                        name="snippet.py"))
    finally:
        collector.terminate()
        collector.wait(timeout=30)


def wait_healthy(endpoint: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{endpoint}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"no collector answered at {endpoint} within {timeout} s")
