"""A LlamaIndex AgentWorkflow traced with agenttrace: a researcher with a tool hands off to a writer.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/llama_index_example.py
"""

from __future__ import annotations

import asyncio
import json

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.llms.openai_like import OpenAILike

import agenttrace
from agenttrace.demo.env import example_env

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}


def lookup_capital(country: str) -> str:
    """Looks up the capital city of a country by its English name."""
    return CAPITALS.get(country, "unknown")


def scripted(body: dict) -> dict | str:
    system, text = str(body["messages"][0].get("content")), json.dumps(body["messages"])
    if "researcher" in system:
        if "Nairobi" in text:
            return {"tool_calls": [{"name": "handoff", "arguments": {"to_agent": "writer", "reason": "found it"}}]}
        return {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": "Kenya"}}]}
    return "The capital of Kenya is Nairobi."


async def main() -> None:
    with example_env("llama_index", scripted) as env:
        llm = OpenAILike(model=env.model, api_base=env.base_url,
                         api_key=env.api_key, is_chat_model=True,
                         is_function_calling_model=True)
        researcher = FunctionAgent(name="researcher", description="Looks facts up.", llm=llm,
                                   system_prompt="You are the researcher: look the fact up, then hand off to writer.",
                                   tools=[lookup_capital], can_handoff_to=["writer"])
        writer = FunctionAgent(name="writer", description="Writes the final answer.", llm=llm,
                               system_prompt="You are the writer: answer in one sentence.")
        workflow = AgentWorkflow(agents=[researcher, writer], root_agent="researcher")
        async with agenttrace.run("capital-question", task="What is the capital of Kenya?", expected="Nairobi") as run:
            run.finish(str(await workflow.run(user_msg="What is the capital of Kenya?")))
        env.show(run.run_id)


if __name__ == "__main__":
    asyncio.run(main())
