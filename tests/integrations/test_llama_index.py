"""LlamaIndex AgentWorkflow: FunctionAgents with handoffs, ReAct and CodeAct agents, against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("llama_index.core.agent.workflow")
pytest.importorskip("llama_index.llms.openai_like")

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent  # noqa: E402
from llama_index.llms.openai_like import OpenAILike  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.framework("llama_index")


def flush() -> None:
    assert agenttrace.setup.active().force_flush(), "spans were not exported"


def messages(span, key: str) -> list[dict]:
    return json.loads(span.attributes[key])


def text_of(message: dict) -> str:
    return "".join(p.get("content") or "" for p in message["parts"] if p["type"] == "text")


def chat_spans(memory) -> tuple[dict, list]:
    """All finished spans by id, and the ``chat`` spans among them in start order."""
    spans = {s.context.span_id: s for s in memory.get_finished_spans()}
    chats = sorted((s for s in spans.values() if s.attributes.get("gen_ai.operation.name") == "chat"),
                   key=lambda s: s.start_time)
    return spans, chats


def lookup(country: str) -> str:
    """Looks up the capital of a country (by its number)."""
    return f"capital-{country}"


def broken_search(query: str) -> str:
    """Searches the web."""
    raise ValueError("search backend down")


def script(body: dict) -> dict | str:
    msgs = body["messages"]
    system = str(msgs[0].get("content")) if msgs[0]["role"] == "system" else ""
    text = json.dumps(msgs)
    n = re.search(r"country #(\d+)", text).group(1)
    if "ROLE:PLANNER" in system:
        return {"tool_calls": [{"name": "handoff", "arguments": {"to_agent": "researcher", "reason": "needs lookup"}}]}
    if "ROLE:RESEARCHER" in system:
        if f"capital-{n}" in text:
            return {"tool_calls": [{"name": "handoff", "arguments": {"to_agent": "writer", "reason": "found it"}}]}
        if "search backend down" in text:
            return {"tool_calls": [{"name": "lookup", "arguments": {"country": n}}]}
        return {"tool_calls": [{"name": "broken_search", "arguments": {"query": f"capital of country #{n}"}}]}
    assert "ROLE:WRITER" in system
    return f"The capital of country #{n} is capital-{n}."


@pytest.fixture
def traced(instrumented):
    return instrumented("llama_index")


@pytest.fixture
def llm():
    with ScriptedLLM(script) as server:
        yield server


def make_workflow(llm: ScriptedLLM) -> AgentWorkflow:
    model = OpenAILike(model="scripted-model", api_base=llm.base_url, api_key="test", is_chat_model=True,
                       is_function_calling_model=True)
    planner = FunctionAgent(name="planner", description="Plans the work.", system_prompt="ROLE:PLANNER",
                            llm=model, can_handoff_to=["researcher"])
    researcher = FunctionAgent(name="researcher", description="Finds capitals.", system_prompt="ROLE:RESEARCHER",
                               llm=model, tools=[lookup, broken_search], can_handoff_to=["writer"])
    writer = FunctionAgent(name="writer", description="Writes the answer.", system_prompt="ROLE:WRITER", llm=model)
    return AgentWorkflow(agents=[planner, researcher, writer], root_agent="planner")


async def solve(llm: ScriptedLLM, n: int) -> tuple[str, str]:
    async with agenttrace.run("llama-index-capital", task=f"capital of country #{n}", expected=f"capital-{n}") as run:
        result = await make_workflow(llm).run(user_msg=f"What is the capital of country #{n}?")
        answer = str(result)
        run.finish(answer)
    return run.run_id, answer


def check_trajectory(traj, n: int) -> None:
    steps = traj.steps
    assert [s.agent for s in steps] == ["planner", "researcher", "researcher", "researcher", "writer"], \
        [(s.agent, s.render()[:100]) for s in steps]
    planner, r1, r2, r3, writer = steps
    assert planner.transfer_to == "researcher"
    assert [c.name for c in planner.tool_calls] == ["handoff"]
    assert [c.name for c in r1.tool_calls] == ["broken_search"]
    assert "search backend down" in (r1.tool_calls[0].error or "")
    assert [(c.name, c.arguments, c.result) for c in r2.tool_calls] == [("lookup", {"country": str(n)}, f"capital-{n}")]
    assert r2.tool_calls[0].error is None and r2.tool_calls[0].id
    assert r3.transfer_to == "writer"
    assert writer.content == f"The capital of country #{n} is capital-{n}." and not writer.tool_calls
    assert traj.outcome.value == "success"
    # the workflow declares its team, each agent with its description and tools (the app's run declares none)
    assert [(m.name, m.description, [(t.name, t.parameters, t.description) for t in m.tools]) for m in traj.team] == [
        ("planner", "Plans the work.", []),
        ("researcher", "Finds capitals.", [("lookup", ["country"], "Looks up the capital of a country (by its number)."),
                                           ("broken_search", ["query"], "Searches the web.")]),
        ("writer", "Writes the answer.", [])]


async def test_handoffs_tools_and_errors(traced, collector, llm, memory, owner):
    run_id, answer = await solve(llm, 7)
    assert answer == "The capital of country #7 is capital-7."
    flush()
    traj, _ = collector.wait_run(run_id)
    check_trajectory(traj, 7)
    spans = {s.context.span_id: s for s in memory.get_finished_spans()}

    by_op: dict[str, list] = {}
    for s in spans.values():
        by_op.setdefault(s.attributes.get("gen_ai.operation.name"), []).append(s)
    assert sorted(owner(s) for s in by_op["chat"]) == ["planner", "researcher", "researcher", "researcher", "writer"]
    assert sorted((s.attributes["gen_ai.tool.name"], owner(s)) for s in by_op["execute_tool"]) == [
        ("broken_search", "researcher"), ("handoff", "planner"), ("handoff", "researcher"), ("lookup", "researcher")]
    [lookup_span] = [s for s in by_op["execute_tool"] if s.attributes["gen_ai.tool.name"] == "lookup"]
    asked = [p for c in by_op["chat"] for m in messages(c, "gen_ai.output.messages") for p in m["parts"]
             if p["type"] == "tool_call" and p["name"] == "lookup"]
    assert asked == [{"type": "tool_call", "id": lookup_span.attributes["gen_ai.tool.call.id"], "name": "lookup",
                      "arguments": {"country": "7"}}]
    assert {tuple(c.attributes["gen_ai.response.finish_reasons"]) for c in by_op["chat"]} == {("tool_calls",),
                                                                                            ("stop",)}


async def test_twenty_parallel_workflows(traced, collector, llm):
    results = await asyncio.gather(*(solve(llm, n) for n in range(100, 120)))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(range(100, 120), results):
        assert answer == f"The capital of country #{n} is capital-{n}."
        traj, _ = collector.wait_run(run_id)
        check_trajectory(traj, n)


def react_script(body: dict) -> str | dict:
    """A ReAct researcher (text protocol, no function calling) handing off to a FunctionAgent writer."""
    msgs = body["messages"]
    text = json.dumps(msgs)
    n = re.search(r"country #(\d+)", text).group(1)
    if "ROLE:WRITER" in str(msgs[0].get("content")):
        return f"The capital of country #{n} is capital-{n}."
    if f"capital-{n}" in text:
        return ('Thought: I found it and hand off.\nAction: handoff\n'
                'Action Input: {"to_agent": "writer", "reason": "found it"}')
    return f'Thought: I need to look it up.\nAction: lookup\nAction Input: {{"country": "{n}"}}'


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "plain"])
async def test_react_agent_turns_have_chat_spans(traced, collector, memory, streaming):
    from llama_index.core.agent.workflow import ReActAgent

    with ScriptedLLM(react_script) as server:
        model = OpenAILike(model="scripted-model", api_base=server.base_url, api_key="test", is_chat_model=True,
                           is_function_calling_model=True)
        researcher = ReActAgent(name="researcher", description="Finds capitals.", llm=model, tools=[lookup],
                                can_handoff_to=["writer"], streaming=streaming)
        writer = FunctionAgent(name="writer", description="Writes.", system_prompt="ROLE:WRITER", llm=model,
                               streaming=streaming)
        workflow = AgentWorkflow(agents=[researcher, writer], root_agent="researcher")
        async with agenttrace.run("llama-index-react", task="capital of country #9", expected="capital-9") as run:
            run.finish(str(await workflow.run(user_msg="What is the capital of country #9?")))
    flush()

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["researcher", "researcher", "writer"], [
        (s.agent, s.render()[:100]) for s in traj.steps]
    look, hand, write = traj.steps
    assert look.content.startswith("Thought: I need to look it up.\nAction: lookup")
    assert [(c.name, c.arguments, c.result) for c in look.tool_calls] == [("lookup", {"country": "9"}, "capital-9")]
    assert hand.content.startswith("Thought: I found it and hand off.") and hand.transfer_to == "writer"
    assert write.content == "The capital of country #9 is capital-9." and not write.tool_calls
    assert traj.outcome.value == "success"

    spans, chats = chat_spans(memory)
    parents = [spans[s.parent.span_id] for s in chats]
    assert [(p.name, p.attributes["gen_ai.operation.name"]) for p in parents] == [
        ("invoke_agent researcher", "invoke_agent"), ("invoke_agent researcher", "invoke_agent"),
        ("invoke_agent writer", "invoke_agent")]
    assert len({p.context.span_id for p in parents}) == 3  # one chat per agent turn
    assert len(chats) == len(server.requests) == 3
    for chat in chats:
        assert chat.name == "chat scripted-model"
        assert chat.attributes["gen_ai.request.model"] == "scripted-model"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0 and chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert [tuple(c.attributes["gen_ai.response.finish_reasons"]) for c in chats] == [("stop",)] * 3

    first, second = chats[0], chats[1]
    sent = messages(first, "gen_ai.input.messages")
    assert sent[0]["role"] == "system" and "lookup" in text_of(sent[0])  # the ReAct header with the tools
    assert sent[-1]["role"] == "user" and text_of(sent[-1]) == "What is the capital of country #9?"
    said = messages(first, "gen_ai.output.messages")
    assert [m["role"] for m in said] == ["assistant"]
    assert text_of(said[0]) == 'Thought: I need to look it up.\nAction: lookup\nAction Input: {"country": "9"}'
    assert "Observation: capital-9" in json.dumps(messages(second, "gen_ai.input.messages"))
    assert text_of(messages(second, "gen_ai.output.messages")[0]).startswith("Thought: I found it and hand off.")


def codeact_script(body: dict) -> str:
    text = json.dumps(body["messages"])
    if "Result of executing the code given" in text:
        return "The capital of country #5 is capital-5."
    return "I will look it up.\n<execute>\nprint(lookup('5'))\n</execute>"


async def test_codeact_agent_turns_have_chat_spans(traced, collector, memory):
    from llama_index.core.agent.workflow import CodeActAgent

    executed: list[str] = []

    async def run_code(code: str) -> dict:
        executed.append(code)
        return {"output": lookup("5")}

    with ScriptedLLM(codeact_script) as server:
        model = OpenAILike(model="scripted-model", api_base=server.base_url, api_key="test", is_chat_model=True,
                           is_function_calling_model=True)
        coder = CodeActAgent(name="coder", description="Runs code.", code_execute_fn=run_code, tools=[lookup],
                             llm=model)
        async with agenttrace.run("llama-index-codeact", task="capital of country #5", expected="capital-5") as run:
            run.finish(str(await AgentWorkflow(agents=[coder], root_agent="coder").run(
                user_msg="What is the capital of country #5?")))
    flush()
    assert executed == ["print(lookup('5'))"]

    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["coder", "coder"]
    code, answer = traj.steps
    assert code.content.startswith("I will look it up.")
    assert [(c.name, c.arguments) for c in code.tool_calls] == [("execute", {"code": "print(lookup('5'))"})]
    assert "capital-5" in code.tool_calls[0].result
    assert answer.content == "The capital of country #5 is capital-5."
    assert traj.outcome.value == "success"

    spans, chats = chat_spans(memory)
    assert [spans[s.parent.span_id].name for s in chats] == ["invoke_agent coder", "invoke_agent coder"]
    assert [s.attributes["gen_ai.agent.name"] for s in chats] == ["coder", "coder"]
    assert text_of(messages(chats[1], "gen_ai.output.messages")[0]) == "The capital of country #5 is capital-5."
    assert "Result of executing the code given" in json.dumps(messages(chats[1], "gen_ai.input.messages"))
