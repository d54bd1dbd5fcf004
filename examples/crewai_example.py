"""A hierarchical CrewAI crew traced with agenttrace: a manager delegates to a researcher (with a tool) and a writer.

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed (the
manager's delegations show as ``-> Researcher`` / ``-> Writer``). Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    python examples/crewai_example.py
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")  # no network calls of CrewAI's own
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.demo.env import example_env  # noqa: E402

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}


@tool("lookup_capital")
def lookup_capital(country: str) -> str:
    """Looks up the capital city of a country (its English name)."""
    return CAPITALS.get(country, "unknown")


def scripted(body: dict) -> dict | str:
    msgs = body["messages"]
    system = str(msgs[0]["content"])
    everything = " ".join(str(m.get("content")) for m in msgs)
    country = re.search(r"capital of (\w+)", everything).group(1)
    results = [str(m.get("content")) for m in msgs if m["role"] == "tool"]
    if system.startswith("You are Crew Manager."):
        if not results:
            return {"tool_calls": [{"name": "delegate_work_to_coworker", "arguments": {
                "task": f"Find the capital of {country}", "context": "Use your lookup tool.",
                "coworker": "Researcher"}}]}
        if len(results) == 1:
            return {"tool_calls": [{"name": "delegate_work_to_coworker", "arguments": {
                "task": f"Write one sentence saying that the capital of {country} is {results[0]}",
                "context": "The answer for the user.", "coworker": "Writer"}}]}
        return results[-1]
    if system.startswith("You are Researcher."):
        if results:
            return results[-1]
        return {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": country}}]}
    return f"The capital of {country} is {CAPITALS[country]}."


def main() -> None:
    with example_env("crewai", scripted) as env:
        def model() -> LLM:
            return LLM(model="openai/" + env.model, base_url=env.base_url,
                       api_key=env.api_key)

        researcher = Agent(role="Researcher", goal="Find facts with your tools.", backstory="A careful researcher.",
                           llm=model(), tools=[lookup_capital], allow_delegation=False)
        writer = Agent(role="Writer", goal="Write one clear sentence.", backstory="A concise writer.", llm=model(),
                       allow_delegation=False)
        question = "What is the capital of Kenya?"
        crew = Crew(agents=[researcher, writer], process=Process.hierarchical, manager_llm=model(),
                    tasks=[Task(description=f"{question} Answer in one sentence.", expected_output="one sentence")])
        with agenttrace.run("capital-question", task=question, expected="Nairobi") as run:
            run.finish(str(crew.kickoff()))
        env.show(run.run_id)


if __name__ == "__main__":
    main()
