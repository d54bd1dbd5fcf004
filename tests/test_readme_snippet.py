"""The README's SDK snippet, pasted into a file and run as written, prints the verdict on its failed run.

It runs in its own interpreter against a real collector (tests/conftest.py); only AGENTTRACE_ENDPOINT
points it there, as a user would. A script that exits right after its run still delivers its spans.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippet() -> str:
    """The first ```python block of the README's SDK section."""
    sdk = README.read_text(encoding="utf-8").split("\n## SDK\n", 1)[1]
    return re.search(r"```python\n(.*?)```", sdk, re.S).group(1)


def run_script(code: str, endpoint: str, tmp_path: Path, python: str = sys.executable, name: str = "app.py"):
    """``code`` as a file run by ``python``, exporting to ``endpoint``; the finished process."""
    script = tmp_path / name
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTTRACE_"))}
    env["AGENTTRACE_ENDPOINT"] = endpoint
    return subprocess.run([python, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def check_snippet_output(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing of agenttrace's in the app's console
    agent, step, reason = done.stdout.strip().split(" ", 2)
    assert (agent, step) in {("Researcher", "0"), ("Writer", "1")}  # which one is the attributor's call
    assert "1899" in reason


def test_the_readme_snippet_prints_the_verdict_on_its_failed_run(collector, tmp_path):
    check_snippet_output(run_script(readme_snippet(), collector.endpoint, tmp_path, name="snippet.py"))


def test_a_script_that_ends_right_after_its_run_delivers_its_spans(collector, tmp_path):
    """The app's own provider is not shut down at exit; agenttrace's exit flush sends the spans."""
    run_id = uuid.uuid4().hex
    done = run_script(f"""
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import agenttrace

trace.set_tracer_provider(TracerProvider(shutdown_on_exit=False))
agenttrace.instrument()
with agenttrace.run("ends-at-once", run_id="{run_id}") as run:
    with agenttrace.agent_step("Solver", input="2+2") as step:
        step.output("4")
    run.succeed("4")
""", collector.endpoint, tmp_path)
    assert done.returncode == 0, done.stderr
    trajectory, _ = collector.wait_run(run_id, timeout=30)
    assert [s.agent for s in trajectory.steps] == ["Solver"] and trajectory.outcome.value == "success"
