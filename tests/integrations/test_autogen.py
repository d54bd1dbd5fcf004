"""AutoGen AgentChat: RoundRobin, Selector and Magentic-One teams, OpenAIChatCompletionClient against ScriptedLLM.

Plain (``run``) and streaming (``run_stream`` with ``model_client_stream=True``, stream tools) runs."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent  # noqa: E402
from autogen_agentchat.base import TaskResult  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage  # noqa: E402
from autogen_agentchat.teams import MagenticOneGroupChat, RoundRobinGroupChat, SelectorGroupChat  # noqa: E402
from autogen_agentchat.tools import AgentTool  # noqa: E402
from autogen_core import CancellationToken  # noqa: E402
from autogen_core.tools import BaseStreamTool  # noqa: E402
from autogen_ext.models.openai import OpenAIChatCompletionClient  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402
from pydantic import BaseModel  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.models import Outcome  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402

pytestmark = pytest.mark.framework("autogen")

MEMORY = InMemorySpanExporter()
MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}


@pytest.fixture
def ag(instrumented):
    MEMORY.clear()
    return instrumented("autogen", exporter=MEMORY)


def _client(llm: ScriptedLLM) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model="scripted-model", base_url=llm.base_url, api_key="test",
                                      model_info=MODEL_INFO)


def _system(body) -> str:
    return "\n".join(m.get("content") or "" for m in body.get("messages", [])
                     if m.get("role") == "system" and isinstance(m.get("content"), str))


def _text(body) -> str:
    return json.dumps(body.get("messages", []))


def _tag(body) -> str:
    m = re.search(r"TASK-(\d+)", _text(body))
    return m.group(1) if m else "?"


def _tool_results(body) -> list[str]:
    return [str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]


def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


def flaky_lookup(city: str) -> str:
    """Looks up the population of a city."""
    if city != "Paris":
        raise ValueError(f"unknown city {city!r}")
    return "2.1 million"


def team_script(body):
    """researcher: calls add, then summarises; writer: writes the final line. Stateless, so runs may interleave."""
    system, tag = _system(body), _tag(body)
    if "You are the researcher" in system:
        if not _tool_results(body):
            return {"tool_calls": [{"name": "add", "arguments": {"a": int(tag) if tag.isdigit() else 1, "b": 2}}]}
        return f"the sum for TASK-{tag} is {_tool_results(body)[-1]}"
    if "You are the writer" in system:
        return f"FINAL TASK-{tag}"
    raise AssertionError(f"unexpected request: {system[:80]}")


def _agents(llm, *, stream: bool = False):
    client = _client(llm)
    researcher = AssistantAgent("researcher", client, tools=[add], system_message="You are the researcher.",
                                reflect_on_tool_use=True, description="Computes with tools.",
                                model_client_stream=stream)
    writer = AssistantAgent("writer", client, system_message="You are the writer.", description="Writes answers.",
                            model_client_stream=stream)
    return client, researcher, writer


async def _run_stream(runner, task: str) -> tuple[TaskResult, int]:
    """Consumes ``runner.run_stream(task=...)``: the final TaskResult and how many token chunks came before it."""
    chunks, result = 0, None
    async for event in runner.run_stream(task=task):
        if isinstance(event, ModelClientStreamingChunkEvent):
            chunks += 1
        elif isinstance(event, TaskResult):
            result = event
    assert result is not None
    return result, chunks


def _spans():
    flush()
    return MEMORY.get_finished_spans()


def _ancestor_agents(span, by_id) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        if span.attributes.get("gen_ai.operation.name") == "invoke_agent":
            names.append(span.attributes.get("gen_ai.agent.name"))
    return names


async def test_round_robin_steps_tools_and_nesting(ag, collector):
    with ScriptedLLM(team_script) as llm:
        _, researcher, writer = _agents(llm)
        team = RoundRobinGroupChat([researcher, writer], termination_condition=MaxMessageTermination(3))
        async with agenttrace.run("autogen-round-robin", task="add TASK-1 and 2") as run:
            result = await team.run(task="add TASK-1 and 2")
            run.succeed(result.messages[-1].content)

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["researcher", "researcher", "writer"]
    call = traj.steps[0].tool_calls[0]
    assert call.name == "add" and call.arguments == {"a": 1, "b": 2} and str(call.result) == "3"
    assert call.id and call.error is None
    assert "the sum for TASK-1 is 3" in traj.steps[1].content
    assert traj.steps[2].content == "FINAL TASK-1"
    assert traj.outcome is Outcome.SUCCESS and traj.answer == "FINAL TASK-1"
    # the team declares its participants, each with its tools (the app's run declares none)
    assert [(m.name, m.description, [(t.name, t.parameters) for t in m.tools]) for m in traj.team] == [
        ("researcher", "Computes with tools.", [("add", ["a", "b"])]), ("writer", "Writes answers.", [])]

    # every chat/tool span sits under the invoke_agent span of the agent that made it
    spans = [s for s in _spans() if s.attributes.get("agenttrace.run.id") == run.run_id]
    by_id = {s.context.span_id: s for s in MEMORY.get_finished_spans()}
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 3
    assert [_ancestor_agents(s, by_id)[0] for s in chats] == ["researcher", "researcher", "writer"]
    tool = next(s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool")
    assert _ancestor_agents(tool, by_id)[0] == "researcher"
    writer_turn = next(s for s in spans if s.name == "invoke_agent writer")
    assert "FINAL TASK-1" in writer_turn.attributes["gen_ai.output.messages"]
    assert "TASK-1" in writer_turn.attributes["gen_ai.input.messages"]


async def test_streaming_team_run_records_tools_chats_and_turns(ag, collector):
    with ScriptedLLM(team_script) as llm:
        _, researcher, writer = _agents(llm, stream=True)
        team = RoundRobinGroupChat([researcher, writer], termination_condition=MaxMessageTermination(3))
        async with agenttrace.run("autogen-round-robin-stream", task="add TASK-3 and 2") as run:
            result, chunks = await _run_stream(team, "add TASK-3 and 2")
            run.succeed(result.messages[-1].content)

    assert [r.get("stream") for r in llm.requests] == [True, True, True] and chunks >= 2  # really streamed
    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["researcher", "researcher", "writer"]
    call = traj.steps[0].tool_calls[0]
    assert call.name == "add" and call.arguments == {"a": 3, "b": 2} and str(call.result) == "5" and call.error is None
    assert "the sum for TASK-3 is 5" in traj.steps[1].content
    assert traj.steps[2].content == "FINAL TASK-3" and traj.outcome is Outcome.SUCCESS

    spans = [s for s in _spans() if s.attributes.get("agenttrace.run.id") == run.run_id]
    tool = next(s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool")
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"a": 3, "b": 2}
    assert tool.attributes["gen_ai.tool.call.result"] == "5" and tool.attributes["gen_ai.tool.call.id"] == call.id
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]  # one per create_stream
    assert len(chats) == 3
    assert '"add"' in chats[0].attributes["gen_ai.output.messages"]
    assert chats[0].attributes["gen_ai.response.finish_reasons"] == ("function_calls",)  # AutoGen's word for it
    assert "the sum for TASK-3 is 5" in chats[1].attributes["gen_ai.output.messages"]
    assert "FINAL TASK-3" in chats[2].attributes["gen_ai.output.messages"]
    assert all(c.attributes["gen_ai.usage.input_tokens"] > 0 and "TASK-3" in c.attributes["gen_ai.input.messages"]
               for c in chats)
    writer_turn = next(s for s in spans if s.name == "invoke_agent writer")
    assert "FINAL TASK-3" in writer_turn.attributes["gen_ai.output.messages"]


class CityArgs(BaseModel):
    city: str


class StreamingLookup(BaseStreamTool[CityArgs, TextMessage, str]):
    """A stream tool: reports progress as it goes, then returns the population (or fails on an unknown city)."""

    def __init__(self) -> None:
        super().__init__(CityArgs, str, "streaming_lookup", "Looks up the population of a city, step by step.")

    async def run(self, args: CityArgs, cancellation_token: CancellationToken) -> str:
        raise AssertionError("AssistantAgent runs stream tools through run_json_stream")

    async def run_stream(self, args: CityArgs, cancellation_token: CancellationToken):
        yield TextMessage(content=f"searching the census for {args.city}", source="streaming_lookup")
        if args.city != "Paris":
            raise ValueError(f"unknown city {args.city!r}")
        yield "2.1 million"


async def test_stream_tool_error_then_result_on_the_tool_spans(ag, collector):
    def script(body):
        results = _tool_results(body)
        if not results:
            return {"tool_calls": [{"name": "streaming_lookup", "arguments": {"city": "Pariss"}}]}
        if len(results) == 1:
            return {"tool_calls": [{"name": "streaming_lookup", "arguments": {"city": "Paris"}}]}
        return "Paris has 2.1 million people"

    with ScriptedLLM(script) as llm:
        agent = AssistantAgent("lookup", _client(llm), tools=[StreamingLookup()], system_message="You look things up.",
                               max_tool_iterations=3, model_client_stream=True)
        async with agenttrace.run("autogen-stream-tool") as run:
            result, _ = await _run_stream(agent, "population of Paris?")
            run.succeed(result.messages[-1].content)

    progress = [m.content for m in result.messages if isinstance(m, TextMessage) and m.source == "streaming_lookup"]
    assert progress == ["searching the census for Pariss", "searching the census for Paris"]  # the tool did stream
    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["lookup", "lookup", "lookup"]
    failed, ok = traj.steps[0].tool_calls[0], traj.steps[1].tool_calls[0]
    assert failed.arguments == {"city": "Pariss"} and "unknown city" in (failed.error or "")
    assert ok.arguments == {"city": "Paris"} and ok.result == "2.1 million" and ok.error is None
    assert traj.steps[2].content == "Paris has 2.1 million people" and traj.outcome is Outcome.SUCCESS

    spans = [s for s in _spans() if s.attributes.get("agenttrace.run.id") == run.run_id
             and s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert [s.name for s in spans] == ["execute_tool streaming_lookup"] * 2  # AutoGen's own spans, one each
    bad, good = sorted(spans, key=lambda s: s.start_time)
    assert json.loads(bad.attributes["gen_ai.tool.call.arguments"]) == {"city": "Pariss"}
    assert bad.status.status_code is StatusCode.ERROR and "unknown city" in bad.status.description
    assert bad.attributes["error.type"] == "ValueError" and "gen_ai.tool.call.result" not in bad.attributes
    assert json.loads(good.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert good.attributes["gen_ai.tool.call.result"] == "2.1 million"
    assert good.status.status_code is StatusCode.UNSET


async def test_agent_tool_streams_the_inner_agent_under_its_tool_span(ag, collector):
    def script(body):
        if "You are the calculator" in _system(body):
            if not _tool_results(body):
                return {"tool_calls": [{"name": "add", "arguments": {"a": 4, "b": 2}}]}
            return "calculator says 6"
        if not _tool_results(body):
            return {"tool_calls": [{"name": "calculator", "arguments": {"task": "add 4 and 2"}}]}
        return "the calculator found 6"

    with ScriptedLLM(script) as llm:
        calculator = AssistantAgent("calculator", _client(llm), tools=[add], system_message="You are the calculator.",
                                    description="Adds numbers.", reflect_on_tool_use=True, model_client_stream=True)
        boss = AssistantAgent("boss", _client(llm), tools=[AgentTool(calculator)], system_message="You delegate.",
                              reflect_on_tool_use=True, model_client_stream=True)
        async with agenttrace.run("autogen-agent-tool") as run:
            result, _ = await _run_stream(boss, "what is 4+2?")
            run.succeed(result.messages[-1].content)

    assert result.messages[-1].content == "the calculator found 6"
    spans = [s for s in _spans() if s.attributes.get("agenttrace.run.id") == run.run_id]
    by_id = {s.context.span_id: s for s in MEMORY.get_finished_spans()}
    outer = next(s for s in spans if s.name == "execute_tool calculator")
    inner = next(s for s in spans if s.name == "execute_tool add")
    assert json.loads(outer.attributes["gen_ai.tool.call.arguments"]) == {"task": "add 4 and 2"}
    assert outer.attributes["gen_ai.tool.call.result"] == "calculator: calculator says 6"
    assert json.loads(inner.attributes["gen_ai.tool.call.arguments"]) == {"a": 4, "b": 2}  # not the outer's
    assert inner.attributes["gen_ai.tool.call.result"] == "6"
    assert _ancestor_agents(inner, by_id)[0] == "calculator"
    parent = inner
    while parent.parent is not None and parent.parent.span_id in by_id and parent is not outer:
        parent = by_id[parent.parent.span_id]
    assert parent is outer  # the inner agent's work nests under the tool call that ran it

    traj, _ = collector.wait_run(run.run_id)
    delegated = next(c for s in traj.steps for c in s.tool_calls if c.name == "calculator")
    assert delegated.arguments == {"task": "add 4 and 2"} and delegated.result == "calculator: calculator says 6"
    added = next(c for s in traj.steps for c in s.tool_calls if c.name == "add")
    assert added.arguments == {"a": 4, "b": 2} and str(added.result) == "6"
    assert traj.steps[-1].agent == "boss" and traj.steps[-1].content == "the calculator found 6"


async def test_tool_error_is_recorded_and_run_recovers(ag, collector):
    def script(body):
        results = _tool_results(body)
        if not results:
            return {"tool_calls": [{"name": "flaky_lookup", "arguments": {"city": "Pariss"}}]}
        if len(results) == 1:
            return {"tool_calls": [{"name": "flaky_lookup", "arguments": {"city": "Paris"}}]}
        return "Paris has 2.1 million people"

    with ScriptedLLM(script) as llm:
        agent = AssistantAgent("lookup", _client(llm), tools=[flaky_lookup], system_message="You look things up.",
                               max_tool_iterations=3)
        async with agenttrace.run("autogen-tool-error") as run:
            result = await agent.run(task="population of Paris?")
            run.succeed(result.messages[-1].content)

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["lookup", "lookup", "lookup"]
    failed, ok = traj.steps[0].tool_calls[0], traj.steps[1].tool_calls[0]
    assert failed.arguments == {"city": "Pariss"} and "unknown city" in (failed.error or "")
    assert ok.arguments == {"city": "Paris"} and ok.result == "2.1 million" and ok.error is None
    assert traj.outcome is Outcome.SUCCESS
    assert traj.steps[2].content == "Paris has 2.1 million people"


async def test_selector_group_chat_manager_hands_over(ag, collector):
    def script(body):
        prompt = _text(body)
        if "You are in a role play game" in prompt:
            return "writer" if "the sum for TASK-5" in prompt else "researcher"
        return team_script(body)

    with ScriptedLLM(script) as llm:
        client, researcher, writer = _agents(llm)
        team = SelectorGroupChat([researcher, writer], model_client=client,
                                 termination_condition=MaxMessageTermination(3), allow_repeated_speaker=True)
        async with agenttrace.run("autogen-selector") as run:
            result = await team.run(task="add TASK-5 and 2")
            run.succeed(result.messages[-1].content)

    traj, _ = collector.wait_run(run.run_id)
    agents = [s.agent for s in traj.steps]
    assert agents == ["SelectorGroupChatManager", "researcher", "researcher", "SelectorGroupChatManager", "writer"]
    assert traj.steps[0].transfer_to == "researcher" and traj.steps[3].transfer_to == "writer"
    assert str(traj.steps[1].tool_calls[0].result) == "7"
    assert traj.steps[-1].content == "FINAL TASK-5"


def _ledger(next_speaker: str, instruction: str, done: bool = False) -> str:
    return json.dumps({
        "is_request_satisfied": {"reason": "checked", "answer": done},
        "is_in_loop": {"reason": "no", "answer": False},
        "is_progress_being_made": {"reason": "yes", "answer": True},
        "next_speaker": {"reason": "fits", "answer": next_speaker},
        "instruction_or_question": {"reason": "next", "answer": instruction},
    })


async def test_magentic_one_orchestrator_coder_and_terminal(ag, collector, tmp_path):
    from autogen_ext.code_executors.local import LocalCommandLineCodeExecutor

    ledgers = [_ledger("coder", "Write Python that prints 2+2."),
               _ledger("ComputerTerminal", "Run the code."),
               _ledger("coder", "done", done=True)]

    def script(body):
        last = body["messages"][-1].get("content") or ""
        if "You are the coder" in _system(body):
            return "```python\nprint(2 + 2)\n```"
        if "pre-survey" in last:
            return "FACTS: the request is arithmetic."
        if "bullet-point plan" in last:
            return "PLAN: coder writes code, ComputerTerminal runs it."
        if "Recall we are working on the following request" in last:
            return ledgers.pop(0)
        if "final answer" in last.lower():
            return "The answer is 4."
        raise AssertionError(f"unexpected orchestrator request: {last[:120]}")

    with ScriptedLLM(script) as llm:
        client = _client(llm)
        coder = AssistantAgent("coder", client, system_message="You are the coder.", description="Writes code.")
        terminal = CodeExecutorAgent("ComputerTerminal", code_executor=LocalCommandLineCodeExecutor(work_dir=tmp_path),
                                     description="Runs code.")
        team = MagenticOneGroupChat([coder, terminal], model_client=client, max_turns=10)
        async with agenttrace.run("autogen-magentic-one", task="What is 2+2?", expected="4") as run:
            result = await team.run(task="What is 2+2? Use code.")
            run.finish(result.messages[-1].content)

    traj, _ = collector.wait_run(run.run_id)
    orch = "MagenticOneOrchestrator"
    assert [s.agent for s in traj.steps] == [orch, orch, orch, "coder", orch, "ComputerTerminal", orch, orch]
    assert traj.steps[0].content.startswith("FACTS") and traj.steps[1].content.startswith("PLAN")
    assert traj.steps[2].transfer_to == "coder" and traj.steps[4].transfer_to == "ComputerTerminal"
    assert "print(2 + 2)" in traj.steps[3].content
    assert traj.steps[5].content.strip().startswith("4")  # the terminal's own output, no LLM involved
    assert traj.steps[-1].content == "The answer is 4."
    assert traj.outcome is Outcome.SUCCESS  # judged against expected by the collector


async def test_twenty_parallel_teams_stay_separate(ag, collector):
    n = 20
    with ScriptedLLM(team_script) as llm:
        async def one(i: int) -> str:
            _, researcher, writer = _agents(llm)
            team = RoundRobinGroupChat([researcher, writer], termination_condition=MaxMessageTermination(3))
            async with agenttrace.run(f"autogen-parallel-{i}") as run:
                result = await team.run(task=f"add TASK-{i} and 2")
                run.succeed(result.messages[-1].content)
            await researcher._model_client.close()
            return run.run_id

        run_ids = await asyncio.gather(*(one(i) for i in range(n)))

    assert len(set(run_ids)) == n
    for i, run_id in enumerate(run_ids):
        traj, _ = collector.wait_run(run_id)
        assert [s.agent for s in traj.steps] == ["researcher", "researcher", "writer"], (i, traj.steps)
        call = traj.steps[0].tool_calls[0]
        assert call.arguments == {"a": i, "b": 2} and str(call.result) == str(i + 2)
        assert traj.steps[2].content == f"FINAL TASK-{i}"
        assert traj.outcome is Outcome.SUCCESS
        assert [m.name for m in traj.team] == ["researcher", "writer"]


def test_uninstall_restores_autogen(collector):
    import autogen_core.tools._base as tools_base
    from autogen_ext.models.openai._openai_client import BaseOpenAIChatCompletionClient

    def patched():
        return (tools_base.trace_tool_span, tools_base.BaseTool.run_json, tools_base.BaseStreamTool.run_json_stream,
                BaseOpenAIChatCompletionClient.create, BaseOpenAIChatCompletionClient.create_stream)

    before = patched()
    agenttrace.instrument(endpoint=collector.endpoint, frameworks=["autogen"])
    assert all(now is not then for now, then in zip(patched(), before))
    agenttrace.uninstrument()
    assert patched() == before
