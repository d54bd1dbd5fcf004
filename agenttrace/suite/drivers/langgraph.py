"""LangGraph: a swarm (langgraph-swarm) of ReAct agents, each with its tools and a handoff tool per teammate."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import ToolNode, create_react_agent
from langgraph_swarm import create_handoff_tool, create_swarm
from agenttrace.suite.drivers import HandoffDriver


class Driver(HandoffDriver):
    framework = "langgraph"
    integration = "langchain"

    async def run(self, episode, tools, base_url: str) -> str:
        model = ChatOpenAI(model="scripted-model", base_url=base_url, api_key="suite", max_retries=0)
        agents = []
        for spec in episode.agents:
            own = [StructuredTool.from_function(tools[name]) for name in spec.tools]
            handoffs = [create_handoff_tool(agent_name=other.name) for other in episode.agents if other is not spec]
            agents.append(create_react_agent(model, ToolNode(own + handoffs, handle_tool_errors=True), name=spec.name,
                                             prompt=spec.instructions))
        graph = create_swarm(agents, default_active_agent=episode.first_agent).compile()
        out = await graph.ainvoke({"messages": [HumanMessage(episode.task.text)]}, {"recursion_limit": 200})
        return out["messages"][-1].content
