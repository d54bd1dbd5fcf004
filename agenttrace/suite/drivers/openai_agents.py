"""OpenAI Agents SDK: one Agent per member with its function tools; every agent may hand off to every other."""

from __future__ import annotations

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from agents.tracing import set_trace_processors
from openai import AsyncOpenAI
from agenttrace.suite.drivers import HandoffDriver


class Driver(HandoffDriver):
    framework = "openai_agents"
    integration = "openai_agents"

    def __init__(self) -> None:
        set_trace_processors([])  # no export to OpenAI's tracing backend

    async def run(self, episode, tools, base_url: str) -> str:
        client = AsyncOpenAI(base_url=base_url, api_key="suite", max_retries=0)
        model = OpenAIChatCompletionsModel(model="scripted-model", openai_client=client)
        agents = {spec.name: Agent(name=spec.name, instructions=spec.instructions, model=model,
                                   tools=[function_tool(tools[name]) for name in spec.tools])
                  for spec in episode.agents}
        for agent in agents.values():
            agent.handoffs = [other for other in agents.values() if other is not agent]
        result = await Runner.run(agents[episode.first_agent], episode.task.text, max_turns=100)
        return str(result.final_output)
