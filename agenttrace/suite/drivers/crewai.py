"""CrewAI: a crew whose first member owns the task and delegates to coworkers (``delegate_work_to_coworker``);
a coworker's final answer is what the delegator gets back. Plays the supervisor shape only: a coworker working
on a delegated task cannot delegate further, so the hierarchical crew does not run."""

from __future__ import annotations

import asyncio
import os
import tempfile

from agenttrace.suite.plan import Turn
from agenttrace.suite.script import AgentReply, delegation_replies

# no telemetry, and CrewAI's task-output database out of the user's data dir
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="agenttrace-suite-crewai-"))

from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.tools import tool  # noqa: E402


class Driver:
    framework = "crewai"
    integration = "crewai"
    topologies = ("supervisor",)

    def replies(self, turns: tuple[Turn, ...]) -> list[AgentReply]:
        return delegation_replies(
            turns, lambda target, text: {"name": "delegate_work_to_coworker",
                                         "arguments": {"task": text, "context": "", "coworker": target}},
            lambda text: None)

    async def run(self, episode, tools, base_url: str) -> str:
        # a model name CrewAI knows natively (others need LiteLLM)
        llm = LLM(model="openai/gpt-4o-mini", base_url=base_url, api_key="suite")
        agents = {spec.name: Agent(role=spec.name, goal="Answer the task correctly.", backstory=spec.instructions,
                                   llm=llm, tools=[tool(name)(tools[name]) for name in spec.tools],
                                   allow_delegation=True, verbose=False)
                  for spec in episode.agents}
        task = Task(description=episode.task.text, expected_output="the answer", agent=agents[episode.first_agent])
        crew = Crew(agents=list(agents.values()), tasks=[task], process=Process.sequential, verbose=False)
        return str(await asyncio.to_thread(crew.kickoff))
