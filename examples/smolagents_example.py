"""smolagents traced with agenttrace: a CodeAgent manager delegating to a managed ToolCallingAgent.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/smolagents_example.py
"""

from __future__ import annotations

import json
import re

from smolagents import CodeAgent, OpenAIServerModel, ToolCallingAgent, tool

import agenttrace
from agenttrace.demo.env import example_env

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}


@tool
def lookup_capital(country: str) -> str:
    """Looks up the capital city of a country.

    Args:
        country: the country's English name
    """
    return CAPITALS.get(country, "unknown")


def scripted(body: dict) -> dict | str:
    text = json.dumps(body.get("messages"))
    country = re.search(r"capital of (\w+)", text).group(1)
    capital = CAPITALS[country]
    if "CodeAgent manager" in text:  # the manager: delegate, then answer
        if capital in text:
            return f'The researcher answered.\n<code>\nfinal_answer("{capital}")\n</code>'
        return f'I delegate.\n<code>\nprint(researcher(task="Find the capital of {country}"))\n</code>'
    if capital in text:
        return {"tool_calls": [{"name": "final_answer", "arguments": {"answer": capital}}]}
    return {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": country}}]}


def main() -> None:
    with example_env("smolagents", scripted) as env:
        model = OpenAIServerModel(model_id=env.model,
                                  api_base=env.base_url, api_key=env.api_key)
        researcher = ToolCallingAgent(tools=[lookup_capital], model=model, name="researcher",
                                      description="Finds facts about countries with its lookup tool.")
        manager = CodeAgent(tools=[], model=model, managed_agents=[researcher], name="manager",
                            instructions="You are the CodeAgent manager: delegate lookups to the researcher.")
        with agenttrace.run("capital-question", task="What is the capital of Kenya?", expected="Nairobi") as run:
            run.finish(str(manager.run("What is the capital of Kenya?")))
        env.show(run.run_id)


if __name__ == "__main__":
    main()
