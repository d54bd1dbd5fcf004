"""AG2 (classic autogen API): GroupChat (code terminal, "auto" speaker selection), tools, nested chats, 20 parallel chats."""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import pytest

pytest.importorskip("autogen.opentelemetry")

from autogen import ConversableAgent, GroupChat, GroupChatManager, UserProxyAgent, register_function  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.models import Outcome  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402

pytestmark = pytest.mark.framework("ag2")
MEMORY = InMemorySpanExporter()


@pytest.fixture
def ag2(instrumented):
    MEMORY.clear()
    return instrumented("ag2", exporter=MEMORY)


def _cfg(llm):
    return {"config_list": [{"model": "scripted-model", "base_url": llm.base_url, "api_key": "test"}],
            "cache_seed": None}


def _system(body) -> str:
    m = body["messages"][0]
    return m["content"] if m.get("role") == "system" and isinstance(m.get("content"), str) else ""


def _tool_results(body) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m.get("role") == "tool"]


def _tag(body) -> str:
    m = re.search(r"TASK-(\d+)", json.dumps(body["messages"]))
    return m.group(1) if m else "?"


def test_group_chat_turns_and_code_terminal(ag2, collector, tmp_path):
    def script(body):
        system = _system(body)
        if "You are the planner" in system:
            return "Plan: the coder prints 2+2."
        if "You are the coder" in system:
            return "```python\nprint(2 + 2)\n```"
        raise AssertionError(system)

    with ScriptedLLM(script) as llm:
        planner = ConversableAgent("planner", system_message="You are the planner.", llm_config=_cfg(llm))
        coder = ConversableAgent("coder", system_message="You are the coder.", llm_config=_cfg(llm))
        terminal = UserProxyAgent("Computer_terminal", human_input_mode="NEVER", default_auto_reply="",
                                  code_execution_config={"work_dir": str(tmp_path), "use_docker": False})
        chat = GroupChat([terminal, planner, coder], messages=[], max_round=4, speaker_selection_method="round_robin")
        manager = GroupChatManager(chat, llm_config=_cfg(llm))
        with agenttrace.run("ag2-groupchat", task="What is 2+2?", expected="4") as run:
            terminal.initiate_chat(manager, message="What is 2+2?", max_turns=1)
            run.finish(chat.messages[-1]["content"])

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["planner", "coder", "Computer_terminal"]
    assert traj.steps[0].content == "Plan: the coder prints 2+2."
    assert "print(2 + 2)" in traj.steps[1].content
    assert "4" in traj.steps[2].content and "exitcode: 0" in traj.steps[2].content  # the execution output
    assert traj.outcome is Outcome.SUCCESS

    spans = [s for s in (flush() or MEMORY.get_finished_spans()) if s.attributes.get("agenttrace.run.id") == run.run_id]
    by_id = {s.context.span_id: s for s in spans}
    for chat_span in (s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"):
        parent = by_id[chat_span.parent.span_id]
        assert parent.attributes.get("gen_ai.operation.name") == "invoke_agent"
        assert parent.attributes["gen_ai.agent.name"] == chat_span.attributes["gen_ai.agent.name"]
    assert not any(s.name == "invoke_agent chat_manager" for s in spans)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_auto_speaker_selection_is_one_span_not_steps(ag2, collector, mode):
    """AG2 picks each speaker in an internal checking_agent / speaker_selection_agent chat: no steps, one span."""
    picks = iter(["planner or coder?", "planner", "coder"])  # the first answer names two roles: AG2 asks again

    def script(body):
        system = _system(body)
        if system.startswith("You are in a role play game"):
            return next(picks)
        if "You are the planner" in system:
            return "Plan: the coder answers."
        if "You are the coder" in system:
            return "The answer is 4."
        raise AssertionError(system)

    with ScriptedLLM(script) as llm:
        planner = ConversableAgent("planner", system_message="You are the planner.", llm_config=_cfg(llm))
        coder = ConversableAgent("coder", system_message="You are the coder.", llm_config=_cfg(llm))
        user = ConversableAgent("user", llm_config=False, human_input_mode="NEVER", default_auto_reply="")
        chat = GroupChat([user, planner, coder], messages=[], max_round=3, speaker_selection_method="auto")
        manager = GroupChatManager(chat, llm_config=_cfg(llm))
        with agenttrace.run(f"ag2-auto-selection-{mode}", task="What is 2+2?") as run:
            if mode == "sync":
                user.initiate_chat(manager, message="What is 2+2?", max_turns=1)
            else:
                asyncio.run(user.a_initiate_chat(manager, message="What is 2+2?", max_turns=1))
            run.succeed(chat.messages[-1]["content"])
        selection_requests = [r for r in llm.requests if _system(r).startswith("You are in a role play game")]

    assert [m["name"] for m in chat.messages] == ["user", "planner", "coder"]
    assert len(selection_requests) == 3  # the LLM did choose: two attempts for planner, one for coder
    traj, _ = collector.wait_run(run.run_id)
    assert [(s.agent, s.content) for s in traj.steps] == [
        ("planner", "Plan: the coder answers."), ("coder", "The answer is 4.")]
    assert traj.outcome is Outcome.SUCCESS

    spans = [s for s in (flush() or MEMORY.get_finished_spans()) if s.attributes.get("agenttrace.run.id") == run.run_id]
    assert not [s.name for s in spans if "checking_agent" in s.name or "speaker_selection_agent" in s.name]
    assert [s.attributes["gen_ai.agent.name"] for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"] \
        == ["planner", "coder"]
    selections = sorted((s for s in spans if s.name == "speaker_selection chat_manager"), key=lambda s: s.start_time)
    assert [s.attributes["ag2.speaker_selection.selected"] for s in selections] == ["planner", "coder"]
    assert json.loads(selections[0].attributes["ag2.speaker_selection.candidates"]) == ["user", "planner", "coder"]
    answers = json.loads(selections[0].attributes["gen_ai.output.messages"])
    assert [p["content"] for m in answers for p in m["parts"]] == ["planner or coder?", "planner"]
    assert selections[0].attributes["gen_ai.usage.input_tokens"] > 0
    assert "agenttrace.transfer.target" not in selections[0].attributes


def _lookup_pair(llm, fn):
    assistant = ConversableAgent("analyst", system_message="You are the analyst.", llm_config=_cfg(llm))
    proxy = ConversableAgent("executor", llm_config=False, human_input_mode="NEVER", default_auto_reply="")
    register_function(fn, caller=assistant, executor=proxy, name="population", description="City population.")
    return assistant, proxy


def population(city: Annotated[str, "city"]) -> str:
    if city != "Paris":
        raise ValueError(f"unknown city {city!r}")
    return "2.1 million"


def test_tool_calls_results_and_errors(ag2, collector):
    def script(body):
        results = _tool_results(body)
        if not results:
            return {"tool_calls": [{"name": "population", "arguments": {"city": "Pariss"}}]}
        if len(results) == 1:
            return {"tool_calls": [{"name": "population", "arguments": {"city": "Paris"}}]}
        return "Paris has 2.1 million people."

    with ScriptedLLM(script) as llm:
        analyst, executor = _lookup_pair(llm, population)
        with agenttrace.run("ag2-tools") as run:
            result = executor.initiate_chat(analyst, message="Population of Paris?", max_turns=3)
            run.succeed(result.chat_history[-1]["content"])

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["analyst", "executor", "analyst", "executor", "analyst"]
    assert traj.steps[0].tool_calls[0].name == "population"
    assert traj.steps[0].tool_calls[0].arguments == {"city": "Pariss"}
    failed = traj.steps[1].tool_calls[0]  # executed by the executor agent, on its own turn
    assert failed.name == "population" and failed.error
    ok = traj.steps[3].tool_calls[0]
    assert ok.arguments == {"city": "Paris"} and "2.1 million" in str(ok.result) and ok.error is None
    assert traj.steps[-1].content == "Paris has 2.1 million people."
    assert traj.outcome is Outcome.SUCCESS


def test_nested_chat_captain_and_expert(ag2, collector):
    def script(body):
        if "You are the expert" in _system(body):
            return "EXPERT: the answer is 42."
        raise AssertionError(_system(body))

    with ScriptedLLM(script) as llm:
        captain = ConversableAgent("captain", system_message="You are the captain.", llm_config=_cfg(llm))
        expert = ConversableAgent("expert", system_message="You are the expert.", llm_config=_cfg(llm))
        user = ConversableAgent("user", llm_config=False, human_input_mode="NEVER")
        captain.register_nested_chats([{"recipient": expert, "summary_method": "last_msg", "max_turns": 1}],
                                      trigger=user)
        with agenttrace.run("ag2-nested") as run:
            result = user.initiate_chat(captain, message="Ask the expert: 6*7?", max_turns=1)
            run.succeed(result.chat_history[-1]["content"])

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["captain", "expert"]
    assert traj.steps[1].content == "EXPERT: the answer is 42."
    assert "42" in traj.steps[0].content  # the captain's reply is the nested chat's summary
    assert traj.outcome is Outcome.SUCCESS


def test_twenty_parallel_chats(ag2, collector):
    def script(body):
        tag = _tag(body)
        results = _tool_results(body)
        if not results:
            return {"tool_calls": [{"name": "population", "arguments": {"city": "Paris"}}]}
        return f"TASK-{tag}: {results[-1]}"

    with ScriptedLLM(script) as llm:
        def one(i):
            analyst, executor = _lookup_pair(llm, population)
            with agenttrace.run(f"ag2-parallel-{i}") as run:
                result = executor.initiate_chat(analyst, message=f"TASK-{i}: population of Paris?", max_turns=2,
                                                silent=True)
                run.succeed(result.chat_history[-1]["content"])
            return run.run_id

        with ThreadPoolExecutor(8) as pool:
            run_ids = list(pool.map(one, range(20)))

    assert len(set(run_ids)) == 20
    for i, run_id in enumerate(run_ids):
        traj, _ = collector.wait_run(run_id)
        assert [s.agent for s in traj.steps] == ["analyst", "executor", "analyst"], (i, traj.steps)
        assert traj.steps[-1].content == f"TASK-{i}: 2.1 million"
        assert "2.1 million" in str(traj.steps[1].tool_calls[0].result)


def test_uninstall_restores_ag2(collector):
    from autogen.oai.client import OpenAIWrapper

    before = (ConversableAgent.__init__, OpenAIWrapper.create, GroupChat._auto_select_speaker)
    agenttrace.instrument(endpoint=collector.endpoint, frameworks=["ag2"])
    agent = ConversableAgent("a", llm_config=False)
    assert "generate_reply" in vars(agent)
    agenttrace.uninstrument()
    assert (ConversableAgent.__init__, OpenAIWrapper.create, GroupChat._auto_select_speaker) == before
    assert "generate_reply" not in vars(agent)

