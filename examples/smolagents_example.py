"""smolagents traced with agenttrace: a CodeAgent manager delegating to a managed ToolCallingAgent.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/smolagents_example.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile

from smolagents import CodeAgent, OpenAIServerModel, ToolCallingAgent, tool

import agenttrace
from agenttrace.local_collector import LocalCollector
from agenttrace.testing.scripted_llm import ScriptedLLM

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
    with contextlib.ExitStack() as stack:
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            base_url = stack.enter_context(ScriptedLLM(scripted)).base_url
        endpoint = os.environ.get("AGENTTRACE_ENDPOINT")
        collector = None
        if not endpoint:
            collector = stack.enter_context(LocalCollector(os.path.join(tempfile.mkdtemp(), "agenttrace.db")))
            endpoint = collector.endpoint
        agenttrace.instrument(endpoint=endpoint, service_name="smolagents-example", frameworks=["smolagents"])

        model = OpenAIServerModel(model_id=os.environ.get("AGENTTRACE_MODEL", "scripted-model"),
                                  api_base=base_url, api_key=os.environ.get("OPENAI_API_KEY", "test"))
        researcher = ToolCallingAgent(tools=[lookup_capital], model=model, name="researcher",
                                      description="Finds facts about countries with its lookup tool.")
        manager = CodeAgent(tools=[], model=model, managed_agents=[researcher], name="manager",
                            instructions="You are the CodeAgent manager: delegate lookups to the researcher.")
        with agenttrace.run("capital-question", task="What is the capital of Kenya?", expected="Nairobi") as run:
            run.finish(str(manager.run("What is the capital of Kenya?")))
        agenttrace.uninstrument()
        if collector is not None:
            trajectory, _ = collector.wait_run(run.run_id)
            for step in trajectory.steps:
                print(f"{step.index} {step.agent}: {step.render()[:200]}")
            print("outcome:", trajectory.outcome.value)


if __name__ == "__main__":
    main()
