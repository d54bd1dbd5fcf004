"""One driver per framework: builds the episode's team with that framework's own agents, handoffs and tools,
runs it against the scripted model and returns the final answer. Everything else is shared.

A driver has ``framework`` (the suite's name), ``integration`` (agenttrace's integration to instrument),
``handoff_call(target) -> {"name", "arguments"}`` (the model's tool call that hands over to ``target``) and
``async run(episode, tools, base_url) -> str``.
"""

from __future__ import annotations

import importlib

# suite framework -> driver module (noxfile.py's SUITE_FRAMEWORKS says which environment runs which)
DRIVERS = {"langgraph": "langgraph", "openai_agents": "openai_agents", "autogen": "autogen",
           "llama_index": "llama_index", "pydantic_ai": "pydantic_ai",
           "ag2": "ag2"}


def load(framework: str):
    if framework not in DRIVERS:
        raise ValueError(f"no suite driver for {framework!r}; known: {', '.join(sorted(DRIVERS))}")
    return importlib.import_module(f"agenttrace.suite.drivers.{DRIVERS[framework]}").Driver()
