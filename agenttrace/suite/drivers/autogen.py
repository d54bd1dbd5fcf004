"""AutoGen AgentChat: a Swarm of AssistantAgents, each with its tools and a handoff to every teammate; the run
ends at the first plain text message (the answer)."""

from __future__ import annotations

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import FunctionalTermination, MaxMessageTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import Swarm
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient
from agenttrace.suite.drivers import HandoffDriver

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}


def _answered(messages) -> bool:
    """An agent wrote plain text (not a tool call, its summary or a handoff): the answer."""
    return any(isinstance(m, TextMessage) and m.source != "user" for m in messages)


class Driver(HandoffDriver):
    framework = "autogen"
    integration = "autogen"

    async def run(self, episode, tools, base_url: str) -> str:
        client = OpenAIChatCompletionClient(model="scripted-model", base_url=base_url, api_key="suite",
                                            model_info=MODEL_INFO, max_retries=0)
        agents = [AssistantAgent(spec.name, client, system_message=spec.instructions,
                                 tools=[FunctionTool(tools[name], description=tools[name].__doc__, name=name)
                                        for name in spec.tools],
                                 handoffs=[other.name for other in episode.agents if other is not spec])
                  for spec in episode.agents]
        first = next(a for a in agents if a.name == episode.first_agent)
        team = Swarm([first, *(a for a in agents if a is not first)],
                     termination_condition=FunctionalTermination(_answered) | MaxMessageTermination(200))
        try:
            result = await team.run(task=episode.task.text)
        finally:
            await client.close()
        answers = [m for m in result.messages if isinstance(m, TextMessage) and m.source != "user"]
        return answers[-1].content if answers else ""
