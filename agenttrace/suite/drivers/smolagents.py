"""smolagents: ToolCallingAgents whose teammates are managed agents; delegating is calling a teammate like a
tool, and a teammate's final answer is what its caller gets back. Plays the shapes where every handoff either
delegates or returns to the caller (supervisor, hierarchical crew)."""

from __future__ import annotations

import asyncio
import functools

from smolagents import OpenAIServerModel, ToolCallingAgent, tool

from agenttrace.suite.plan import Turn
from agenttrace.suite.script import AgentReply, delegation_replies, delegations

MAX_STEPS = 60


class Driver:
    framework = "smolagents"
    integration = "smolagents"
    topologies = ("supervisor", "hierarchical_crew")

    def replies(self, turns: tuple[Turn, ...]) -> list[AgentReply]:
        return delegation_replies(turns, lambda target, text: {"name": target, "arguments": {"task": text}},
                                  lambda text: {"name": "final_answer", "arguments": {"answer": text}})

    async def run(self, episode, tools, base_url: str) -> str:
        model = OpenAIServerModel(model_id="scripted-model", api_base=base_url, api_key="suite")
        # the team's structure: each agent manages the teammates it may delegate to (with or without the error)
        edges = delegations(episode.faulty.turns) | delegations(episode.clean.turns)
        specs = {spec.name: spec for spec in episode.agents}

        @functools.cache
        def build(name: str) -> ToolCallingAgent:
            spec = specs[name]
            return ToolCallingAgent(
                tools=[tool(tools[t]) for t in spec.tools], model=model, name=name,
                managed_agents=[build(target) for caller, target in sorted(edges) if caller == name],
                description=spec.instructions.split(". ", 1)[1], instructions=spec.instructions,
                max_steps=MAX_STEPS, verbosity_level=0)

        return str(await asyncio.to_thread(build(episode.first_agent).run, episode.task.text))
