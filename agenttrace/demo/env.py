"""The set-up every framework example shares: a model endpoint, a collector, agenttrace on, the result shown.

Without configuration an example runs offline: the model is a scripted
OpenAI-compatible server on loopback and a collector is started in a temp dir.
Set ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` / ``AGENTTRACE_MODEL`` for a real
model, and ``AGENTTRACE_ENDPOINT`` for your own collector.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console

import agenttrace
from agenttrace.local_collector import LocalCollector
from agenttrace.cli.render import print_trajectory
from agenttrace.testing.scripted_llm import Script, ScriptedLLM


@dataclass
class ExampleEnv:
    base_url: str
    api_key: str
    model: str
    endpoint: str
    collector: LocalCollector | None

    def show(self, run_id: str) -> None:
        """Prints the run as the collector rebuilt it (or where to find it on your own collector)."""
        if self.collector is None:
            print(f"run {run_id} sent to {self.endpoint}: agenttrace runs show {run_id} --endpoint {self.endpoint}")
            return
        trajectory, verdicts = self.collector.wait_run(run_id)
        print_trajectory(Console(), trajectory, verdicts[-1] if verdicts else None)


@contextlib.contextmanager
def example_env(framework: str, script: Script) -> Iterator[ExampleEnv]:
    """Model endpoint and collector as configured (or offline stand-ins), and agenttrace on ``framework``."""
    with contextlib.ExitStack() as stack:
        base_url = os.environ.get("OPENAI_BASE_URL") or stack.enter_context(ScriptedLLM(script)).base_url
        endpoint = os.environ.get("AGENTTRACE_ENDPOINT")
        collector = None
        if not endpoint:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="agenttrace-example-"))
            collector = stack.enter_context(LocalCollector(os.path.join(workdir, "agenttrace.db")))
            endpoint = collector.endpoint
        agenttrace.instrument(endpoint=endpoint, service_name=f"{framework}-example", frameworks=[framework])
        stack.callback(agenttrace.uninstrument)
        yield ExampleEnv(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "test"),
                         model=os.environ.get("AGENTTRACE_MODEL", "scripted-model"), endpoint=endpoint,
                         collector=collector)
