"""AG2 (classic API): a GroupChat whose members call and execute their own tools; a speaker-selection function
passes the turn on where a message names the next speaker, and a message that names none ends the chat."""

from __future__ import annotations

import asyncio

from autogen import ConversableAgent, GroupChat, GroupChatManager, register_function

from agenttrace.suite.drivers import HandoffDriver
from agenttrace.suite.script import NEXT_SPEAKER

REQUESTER = "requester"


def _selector(agents: dict[str, ConversableAgent], first: str):
    def select(last: ConversableAgent, chat: GroupChat):
        message = chat.messages[-1]
        if last.name == REQUESTER:
            return agents[first]
        if message.get("tool_calls") or message.get("tool_responses"):
            return last  # it executes its own calls, then goes on
        lines = (message.get("content") or "").splitlines()
        named = [name for line in lines if line.startswith(NEXT_SPEAKER)
                 if (name := line[len(NEXT_SPEAKER):].strip()) in agents]
        return agents[named[-1]] if named else None  # no next speaker: the message is the answer

    return select


class Driver(HandoffDriver):
    framework = "ag2"
    integration = "ag2"

    def handoff_call(self, target: str) -> None:
        return None  # the message names the next speaker

    async def run(self, episode, tools, base_url: str) -> str:
        config = {"config_list": [{"model": "scripted-model", "base_url": base_url, "api_key": "suite"}],
                  "cache_seed": None}
        agents = {}
        for spec in episode.agents:
            agent = ConversableAgent(spec.name, system_message=spec.instructions, llm_config=config,
                                     human_input_mode="NEVER")
            for name in spec.tools:
                register_function(tools[name], caller=agent, executor=agent, name=name,
                                  description=tools[name].__doc__.split("\n")[0])
            agents[spec.name] = agent
        requester = ConversableAgent(REQUESTER, llm_config=False, human_input_mode="NEVER")
        chat = GroupChat([requester, *agents.values()], messages=[], max_round=200,
                         speaker_selection_method=_selector(agents, episode.first_agent))
        manager = GroupChatManager(chat, llm_config=False)
        await asyncio.to_thread(requester.initiate_chat, manager, message=episode.task.text, max_turns=1,
                                silent=True)
        return chat.messages[-1].get("content") or ""
