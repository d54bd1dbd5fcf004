"""PydanticAI traced with agenttrace: a coordinator agent delegating to a researcher agent from a tool.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/pydantic_ai_example.py
"""

from __future__ import annotations

import json

from pydantic_ai import Agent, RunContext
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import agenttrace
from agenttrace.demo.env import example_env

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}


def scripted(body: dict) -> dict | str:
    text = json.dumps(body["messages"])
    if "You coordinate" in text:
        if "Nairobi" in text:
            return "The capital of Kenya is Nairobi."
        return {"tool_calls": [{"name": "ask_researcher", "arguments": {"question": "capital of Kenya"}}]}
    if "Nairobi" in text:
        return "Nairobi"
    return {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": "Kenya"}}]}


def main() -> None:
    with example_env("pydantic_ai", scripted) as env:
        model = OpenAIChatModel(env.model,
                                provider=OpenAIProvider(base_url=env.base_url,
                                                        api_key=env.api_key))
        researcher = Agent(model, name="researcher", system_prompt="You look facts up with your tools.")

        @researcher.tool_plain
        def lookup_capital(country: str) -> str:
            """The capital city of a country."""
            return CAPITALS.get(country, "unknown")

        coordinator = Agent(model, name="coordinator",
                            system_prompt="You coordinate: ask the researcher, then answer in one sentence.")

        @coordinator.tool
        async def ask_researcher(ctx: RunContext, question: str) -> str:
            """Delegates a question to the researcher agent."""
            return (await researcher.run(question, usage=ctx.usage)).output

        with agenttrace.run("capital-question", task="What is the capital of Kenya?", expected="Nairobi") as run:
            run.finish(coordinator.run_sync("What is the capital of Kenya?").output)
        env.show(run.run_id)


if __name__ == "__main__":
    main()
