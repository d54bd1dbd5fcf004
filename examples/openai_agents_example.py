"""OpenAI Agents SDK traced with agenttrace: triage hands off to billing, which uses a tool.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector. The SDK's own export to OpenAI's
trace backend is turned off here (``set_trace_processors([])``); agenttrace adds
its processor next to whatever the app keeps.

    pip install agenttrace[collector] openai-agents
    python examples/openai_agents_example.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from agents.tracing import set_trace_processors
from openai import AsyncOpenAI

import agenttrace
from agenttrace.local_collector import LocalCollector
from agenttrace.testing.scripted_llm import ScriptedLLM

INVOICES = {"INV-42": "120 EUR, paid on 3 March"}


@function_tool
def lookup_invoice(invoice_id: str) -> str:
    """Looks an invoice up by its id."""
    return INVOICES.get(invoice_id, "unknown invoice")


def scripted(body: dict) -> dict | str:
    system = " ".join(m.get("content") or "" for m in body["messages"] if m["role"] == "system")
    tool_results = [m.get("content") or "" for m in body["messages"] if m["role"] == "tool"]
    if "triage" in system:
        return {"tool_calls": [{"name": "transfer_to_billing", "arguments": {}}]}
    if not any("EUR" in r for r in tool_results):
        return {"tool_calls": [{"name": "lookup_invoice", "arguments": {"invoice_id": "INV-42"}}]}
    return "Invoice INV-42: 120 EUR, paid on 3 March."


async def main() -> None:
    with contextlib.ExitStack() as stack:
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            base_url = stack.enter_context(ScriptedLLM(scripted)).base_url
        endpoint = os.environ.get("AGENTTRACE_ENDPOINT")
        collector = None
        if not endpoint:
            collector = stack.enter_context(LocalCollector(os.path.join(tempfile.mkdtemp(), "agenttrace.db")))
            endpoint = collector.endpoint
        set_trace_processors([])
        agenttrace.instrument(endpoint=endpoint, service_name="openai-agents-example", frameworks=["openai_agents"])

        client = AsyncOpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "test"))
        model = OpenAIChatCompletionsModel(model=os.environ.get("AGENTTRACE_MODEL", "scripted-model"),
                                           openai_client=client)
        billing = Agent(name="billing", model=model, tools=[lookup_invoice],
                        instructions="You are billing: look invoices up with lookup_invoice and report them.")
        triage = Agent(name="triage", model=model, handoffs=[billing],
                       instructions="You are triage: hand invoice questions to billing.")
        task = "What is the status of invoice INV-42?"
        async with agenttrace.run("invoice-status", task=task) as run:
            result = await Runner.run(triage, task)
            run.succeed(result.final_output)
        agenttrace.uninstrument()
        if collector is not None:
            trajectory, _ = collector.wait_run(run.run_id)
            for step in trajectory.steps:
                print(f"{step.index} {step.agent}: {step.render()[:200]}")
            print("outcome:", trajectory.outcome.value)


if __name__ == "__main__":
    asyncio.run(main())
