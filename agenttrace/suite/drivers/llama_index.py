"""LlamaIndex: an AgentWorkflow of FunctionAgents, each with its tools and may hand off to every teammate."""

from __future__ import annotations

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai_like import OpenAILike
from agenttrace.suite.drivers import HandoffDriver


class Driver(HandoffDriver):
    framework = "llama_index"
    integration = "llama_index"

    def handoff_call(self, target: str) -> dict:
        return {"name": "handoff", "arguments": {"to_agent": target, "reason": "their part of the task"}}

    async def run(self, episode, tools, base_url: str) -> str:
        model = OpenAILike(model="scripted-model", api_base=base_url, api_key="suite", is_chat_model=True,
                           is_function_calling_model=True, max_retries=0)
        agents = [FunctionAgent(name=spec.name, description=spec.instructions, system_prompt=spec.instructions,
                                llm=model, tools=[FunctionTool.from_defaults(tools[name]) for name in spec.tools],
                                can_handoff_to=[other.name for other in episode.agents if other is not spec])
                  for spec in episode.agents]
        workflow = AgentWorkflow(agents=agents, root_agent=episode.first_agent, timeout=120)
        return str(await workflow.run(user_msg=episode.task.text))
