"""A CAMEL (OWL) Workforce traced with agenttrace: planner, coordinator, a researcher with a tool, a writer.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/camel_example.py
"""

from __future__ import annotations

import json
import re

from camel.agents import ChatAgent
from camel.messages import BaseMessage
from camel.models import ModelFactory
from camel.societies.workforce import Workforce
from camel.tasks import Task
from camel.toolkits import FunctionTool
from camel.types import ModelPlatformType
from camel.utils import BaseTokenCounter

import agenttrace
from agenttrace.demo.env import example_env

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}


def lookup_capital(country: str) -> str:
    r"""Looks up the capital city of a country.

    Args:
        country (str): the country's English name.

    Returns:
        str: the capital city.
    """
    return CAPITALS.get(country, "unknown")


class CharCounter(BaseTokenCounter):
    """A token estimate that needs no tiktoken download (offline machines)."""

    def count_tokens_from_messages(self, messages):
        return sum(len(str(m.get("content") or "")) for m in messages) // 4

    def encode(self, text):
        return list(text.encode())

    def decode(self, token_ids):
        return bytes(token_ids).decode(errors="replace")


def scripted(body: dict) -> dict | str:
    msgs = body["messages"]
    system, last = str(msgs[0]["content"]), str(msgs[-1]["content"])
    country = re.search(r"capital of (\w+)", " ".join(str(m.get("content")) for m in msgs)).group(1)
    if "task management assistant" in system:
        if "evaluate its quality" in last:
            return json.dumps({"quality_score": 95, "reasoning": "complete", "issues": []})
        return (f"<tasks><task>Find the capital of {country} with the lookup tool.</task>"
                f"<task>Write one sentence naming the capital of {country}.</task></tasks>")
    if "coordinating a group of workers" in system:
        tasks = re.findall(r"Task ID: (\S+)\s*\nContent: (.*)", last)
        nodes = {d: i for i, d in re.findall(r"<([0-9a-f-]{36})>:<([^>]*)>", last)}
        pick = {"Find": next(i for d, i in nodes.items() if "Research" in d),
                "Write": next(i for d, i in nodes.items() if "Writ" in d)}
        return json.dumps({"assignments": [
            {"task_id": t, "assignee_id": pick[c.split()[0]], "dependencies": [] if c.startswith("Find") else
             [tasks[0][0]]} for t, c in tasks]})
    if "researcher" in system:
        if CAPITALS[country] in " ".join(str(m.get("content")) for m in msgs[1:]):
            return json.dumps({"content": CAPITALS[country], "failed": False})
        return {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": country}}]}
    return json.dumps({"content": f"The capital of {country} is {CAPITALS[country]}.", "failed": False})


def main() -> None:
    with example_env("camel", scripted) as env:
        def model():
            return ModelFactory.create(model_platform=ModelPlatformType.OPENAI_COMPATIBLE_MODEL,
                                       model_type=env.model,
                                       url=env.base_url, api_key=env.api_key,
                                       token_counter=CharCounter())

        workforce = Workforce("capital team", coordinator_agent=ChatAgent("Assign tasks well.", model=model()),
                              task_agent=ChatAgent("Plan tasks well.", model=model()))
        workforce.add_single_agent_worker("Researcher: looks facts up", worker=ChatAgent(
            BaseMessage.make_assistant_message(role_name="Researcher", content="You are a careful researcher."),
            model=model(), tools=[FunctionTool(lookup_capital)]))
        workforce.add_single_agent_worker("Writer: writes the final answer", worker=ChatAgent(
            BaseMessage.make_assistant_message(role_name="Writer", content="You write one clear sentence."),
            model=model()))
        question = "What is the capital of Kenya?"
        with agenttrace.run("capital-question", task=question, expected="Nairobi") as run:
            run.finish(str(workforce.process_task(Task(content=question, id="0")).result))
        env.show(run.run_id)


if __name__ == "__main__":
    main()
