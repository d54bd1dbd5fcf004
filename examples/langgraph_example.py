"""LangGraph traced with agenttrace: a langgraph-supervisor team (supervisor -> researcher with a search tool).

By default the model is a scripted OpenAI-compatible server on loopback and a
collector is started in a temp dir; the rebuilt trajectory is printed. Set
``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``AGENTTRACE_MODEL`` for a real model and
``AGENTTRACE_ENDPOINT`` for your own collector.

    pip install agenttrace[collector] langgraph langgraph-supervisor langchain-openai
    python examples/langgraph_example.py
"""

from __future__ import annotations


from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent
from langgraph_supervisor import create_supervisor

import agenttrace
from agenttrace.demo.env import example_env

TASK = "How many moons does Mars have?"
FACTS = {"mars moons": "Mars has two moons, Phobos and Deimos."}


@tool
def search(query: str) -> str:
    """Searches an encyclopedia."""
    return FACTS.get(query.lower(), "no result")


def scripted(body: dict) -> dict | str:
    """The scripted model: routes on the system prompt, decides from the conversation so far."""
    system = " ".join(m.get("content") or "" for m in body["messages"] if m["role"] == "system")
    tool_results = [m.get("content") or "" for m in body["messages"] if m["role"] == "tool"]
    if system.startswith("You are the researcher"):
        if not any("Phobos" in r for r in tool_results):
            return {"tool_calls": [{"name": "search", "arguments": {"query": "mars moons"}}]}
        return "Mars has two moons: Phobos and Deimos."
    if not any("transferred" in r.lower() for r in tool_results):
        return {"tool_calls": [{"name": "transfer_to_researcher", "arguments": {}}]}
    return "2"


def main() -> None:
    with example_env("langchain", scripted) as env:
        def model() -> ChatOpenAI:
            return ChatOpenAI(model=env.model, base_url=env.base_url,
                              api_key=env.api_key)

        researcher = create_react_agent(model(), [search], name="researcher",
                                        prompt="You are the researcher: look facts up with the search tool.")
        team = create_supervisor([researcher], model=model(), prompt=(
            "You are the supervisor: delegate research to the researcher, then answer with just the number."
        )).compile()
        with agenttrace.run("mars-moons", task=TASK, expected="2") as run:
            out = team.invoke({"messages": [HumanMessage(TASK)]})
            run.finish(out["messages"][-1].content)
        env.show(run.run_id)


if __name__ == "__main__":
    main()
