"""One driver per framework: builds the episode's team with that framework's own agents, handoffs and tools,
runs it against the scripted model and returns the final answer. Everything else is shared.

A driver has ``framework`` (the suite's name), ``integration`` (agenttrace's integration to instrument),
``topologies`` (the team shapes its way of passing control can play), ``replies(turns)`` (the scripted
model's reply for each turn, see ``agenttrace.suite.script``) and ``async run(episode, tools, base_url) -> str``.
"""

from __future__ import annotations

import importlib

from agenttrace.suite.plan import Turn
from agenttrace.suite.script import AgentReply, handoff_replies
from agenttrace.suite.topologies import TOPOLOGIES

# suite framework -> driver module (noxfile.py's SUITE_FRAMEWORKS says which environment runs which)
DRIVERS = {"langgraph": "langgraph", "openai_agents": "openai_agents", "autogen": "autogen",
           "llama_index": "llama_index", "pydantic_ai": "pydantic_ai", "ag2": "ag2", "smolagents": "smolagents",
           "crewai": "crewai"}


class HandoffDriver:
    """A framework where any agent hands over to any other with a ``transfer_to_<name>`` tool call."""

    topologies: tuple[str, ...] = tuple(TOPOLOGIES)

    def handoff_call(self, target: str) -> dict | None:
        return {"name": f"transfer_to_{target}", "arguments": {}}

    def replies(self, turns: tuple[Turn, ...]) -> list[AgentReply]:
        return handoff_replies(turns, self.handoff_call)


def load(framework: str):
    if framework not in DRIVERS:
        raise ValueError(f"no suite driver for {framework!r}; known: {', '.join(sorted(DRIVERS))}")
    return importlib.import_module(f"agenttrace.suite.drivers.{DRIVERS[framework]}").Driver()
