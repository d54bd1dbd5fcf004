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

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from agents.tracing import set_trace_processors
from openai import AsyncOpenAI

import agenttrace
from agenttrace.demo.env import example_env

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
    set_trace_processors([])  # no export to OpenAI's own tracing back end
    with example_env("openai_agents", scripted) as env:
        client = AsyncOpenAI(base_url=env.base_url, api_key=env.api_key)
        model = OpenAIChatCompletionsModel(model=env.model,
                                           openai_client=client)
        billing = Agent(name="billing", model=model, tools=[lookup_invoice],
                        instructions="You are billing: look invoices up with lookup_invoice and report them.")
        triage = Agent(name="triage", model=model, handoffs=[billing],
                       instructions="You are triage: hand invoice questions to billing.")
        task = "What is the status of invoice INV-42?"
        async with agenttrace.run("invoice-status", task=task) as run:
            result = await Runner.run(triage, task)
            run.succeed(result.final_output)
        env.show(run.run_id)


if __name__ == "__main__":
    asyncio.run(main())
