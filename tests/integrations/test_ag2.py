"""AG2 (classic autogen API): GroupChat (code terminal, "auto" speaker selection), tools (executed on a turn of their
own, folded into the calling step), nested chats, 20 parallel chats."""

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
    # the executor's turns only ran the analyst's calls: no steps of their own, the results are on the calls
    assert [s.agent for s in traj.steps] == ["analyst", "analyst", "analyst"]
    (failed,) = traj.steps[0].tool_calls
    assert failed.name == "population" and failed.arguments == {"city": "Pariss"} and "unknown city" in failed.error
    (ok,) = traj.steps[1].tool_calls
    assert ok.arguments == {"city": "Paris"} and "2.1 million" in str(ok.result) and ok.error is None
    assert traj.steps[-1].content == "Paris has 2.1 million people."
    assert traj.outcome is Outcome.SUCCESS


FARES = {"Lisbon-Prague": 174, "Dublin-Athens": 256}


def get_fare(route: Annotated[str, "route"], date: Annotated[str, "date"]) -> str:
    return f"economy fare {route} on {date}: {FARES[route]} EUR"


def add(a: Annotated[int, "a"], b: Annotated[int, "b"]) -> str:
    return f"sum: {a + b}"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("executor", ["user_proxy", "itself"])
def test_each_turn_is_one_step_with_its_calls_results_and_text(ag2, collector, executor, mode):
    """AG2 executes the functions a reply asks for on a turn of its own (a user proxy's, or the caller's when it is
    its own executor, as in the suite's group chats). That turn is no step: each result is on the call that asked
    for it, the tool's output is nobody's content, and a reply's text stays next to its tool calls."""
    replies = iter([
        {"content": "Let me look up both fares.", "tool_calls": [
            {"name": "get_fare", "arguments": {"route": "Lisbon-Prague", "date": "2025-03-25"}},
            {"name": "get_fare", "arguments": {"route": "Dublin-Athens", "date": "2025-03-25"}}]},
        {"content": "Adding them up.", "tool_calls": [{"name": "add", "arguments": {"a": 174, "b": 256}}]},
        "The total is 430 EUR.",
    ])

    def script(body):
        assert "You are the lookup agent" in _system(body)
        return next(replies)

    with ScriptedLLM(script) as llm:
        lookup = ConversableAgent("lookup_agent", system_message="You are the lookup agent.", llm_config=_cfg(llm))
        task = "Total economy fare of Lisbon-Prague and Dublin-Athens on 2025-03-25?"
        if executor == "user_proxy":  # the classic two-agent chat: the proxy runs the assistant's calls
            proxy = ConversableAgent("user_proxy", llm_config=False, human_input_mode="NEVER", default_auto_reply="")
            runner = proxy
            for fn in (get_fare, add):
                register_function(fn, caller=lookup, executor=proxy, description=fn.__name__)
            start = proxy.a_initiate_chat if mode == "async" else proxy.initiate_chat
            chat_with = {"recipient": lookup, "message": task, "max_turns": 3, "silent": True}
        else:  # a group chat member that calls and executes its own tools, as the suite's AG2 driver builds them
            for fn in (get_fare, add):
                register_function(fn, caller=lookup, executor=lookup, description=fn.__name__)
            runner = ConversableAgent("requester", llm_config=False, human_input_mode="NEVER")

            def select(last, chat):
                message = chat.messages[-1]
                return lookup if last is runner or message.get("tool_calls") or message.get("tool_responses") else None

            chat = GroupChat([runner, lookup], messages=[], max_round=10, speaker_selection_method=select)
            manager = GroupChatManager(chat, llm_config=False)
            start = runner.a_initiate_chat if mode == "async" else runner.initiate_chat
            chat_with = {"recipient": manager, "message": task, "max_turns": 1, "silent": True}
        with agenttrace.run(f"ag2-tool-turns-{executor}-{mode}", task=task, expected="430") as run:
            result = start(**chat_with)
            result = asyncio.run(result) if mode == "async" else result
            run.finish(result.chat_history[-1]["content"] if executor == "user_proxy" else chat.messages[-1]["content"])
        assert len(llm.requests) == 3

    traj, _ = collector.wait_run(run.run_id)
    assert traj.outcome is Outcome.SUCCESS
    # a group chat declares its members, each with the tools it calls; a two-agent chat declares no team
    assert [(m.name, [(t.name, t.parameters) for t in m.tools]) for m in traj.team] == (
        [] if executor == "user_proxy" else
        [("requester", []), ("lookup_agent", [("get_fare", ["route", "date"]), ("add", ["a", "b"])])])
    # one step per LLM turn of the agent, with its text and its calls; the executor's turns are no steps
    assert [(s.agent, s.content, [c.name for c in s.tool_calls]) for s in traj.steps] == [
        ("lookup_agent", "Let me look up both fares.", ["get_fare", "get_fare"]),
        ("lookup_agent", "Adding them up.", ["add"]),
        ("lookup_agent", "The total is 430 EUR.", []),
    ]
    # each call has its own result (matched by call id), no error
    calls = [c for s in traj.steps for c in s.tool_calls]
    assert len({c.id for c in calls}) == 3 and all(c.id for c in calls)
    assert [(c.arguments, c.result, c.error) for c in calls] == [
        ({"route": "Lisbon-Prague", "date": "2025-03-25"}, "economy fare Lisbon-Prague on 2025-03-25: 174 EUR", None),
        ({"route": "Dublin-Athens", "date": "2025-03-25"}, "economy fare Dublin-Athens on 2025-03-25: 256 EUR", None),
        ({"a": 174, "b": 256}, "sum: 430", None),
    ]
    # no step's content is a tool's output
    outputs = [str(c.result) for c in calls]
    assert not [s.content for s in traj.steps if any(out in s.content for out in outputs)]

    spans = [s for s in (flush() or MEMORY.get_finished_spans()) if s.attributes.get("agenttrace.run.id") == run.run_id]
    tool_replies = [json.loads(s.attributes["gen_ai.output.messages"]) for s in spans
                    if s.name.startswith("invoke_agent") and '"tool"' in s.attributes.get("gen_ai.output.messages", "")]
    assert [[p["type"] for m in r for p in m["parts"]] for r in tool_replies] == [
        ["tool_call_response", "tool_call_response"], ["tool_call_response"]]


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
        assert [s.agent for s in traj.steps] == ["analyst", "analyst"], (i, traj.steps)
        assert traj.steps[-1].content == f"TASK-{i}: 2.1 million"
        assert "2.1 million" in str(traj.steps[0].tool_calls[0].result)


def test_uninstall_restores_ag2(collector):
    from autogen.oai.client import OpenAIWrapper
    from autogen.opentelemetry import utils
    from autogen.opentelemetry.instrumentators import llm_wrapper

    def patched():
        return (ConversableAgent.__init__, OpenAIWrapper.create, GroupChat._auto_select_speaker,
                utils.message_to_otel, llm_wrapper.message_to_otel)

    before = patched()
    agenttrace.instrument(endpoint=collector.endpoint, frameworks=["ag2"])
    agent = ConversableAgent("a", llm_config=False)
    assert "generate_reply" in vars(agent)
    assert utils.message_to_otel is not before[3] and llm_wrapper.message_to_otel is not before[4]
    agenttrace.uninstrument()
    assert patched() == before
    assert "generate_reply" not in vars(agent)

