"""AutoGen AgentChat traced by agenttrace: a RoundRobin team (researcher with a tool, then writer).

Runs offline by default (a scripted local LLM and a temporary collector); set OPENAI_BASE_URL /
OPENAI_API_KEY / AGENTTRACE_MODEL for a real OpenAI-compatible endpoint and AGENTTRACE_ENDPOINT
for your own collector.

    pip install agenttrace autogen-agentchat "autogen-ext[openai]"
    python examples/autogen_example.py
"""

from __future__ import annotations

import asyncio
import json

import agenttrace
from agenttrace.demo.env import example_env

TASK = "What is 17 + 25? Use the add tool, then let the writer state the answer."


def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


def _scripted(body):
    messages = body.get("messages", [])
    system = " ".join(m.get("content") or "" for m in messages if m.get("role") == "system")
    if "researcher" in system:
        results = [m for m in messages if m.get("role") == "tool"]
        if not results:
            return {"tool_calls": [{"name": "add", "arguments": {"a": 17, "b": 25}}]}
        return f"17 + 25 = {results[-1]['content']}"
    return "The answer is 42."


async def main() -> None:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    with example_env("autogen", _scripted) as env:
        client = OpenAIChatCompletionClient(
            model=env.model, base_url=env.base_url, api_key=env.api_key,
            model_info={"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
                        "structured_output": False},
        )
        researcher = AssistantAgent("researcher", client, tools=[add], reflect_on_tool_use=True,
                                    system_message="You are the researcher. Compute with the add tool.")
        writer = AssistantAgent("writer", client, system_message="You are the writer. State the final answer.")
        team = RoundRobinGroupChat([researcher, writer], termination_condition=MaxMessageTermination(3))
        async with agenttrace.run("autogen-example", task=TASK, expected="42") as run:
            result = await team.run(task=TASK)
            answer = result.messages[-1].content
            run.finish(answer)
        for m in result.messages:
            print(f"{m.source:>10}: {m.to_text() if hasattr(m, 'to_text') else json.dumps(str(m.content))}")
        await client.close()
        env.show(run.run_id)


if __name__ == "__main__":
    asyncio.run(main())
