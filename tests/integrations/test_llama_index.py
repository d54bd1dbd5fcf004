"""LlamaIndex AgentWorkflow: three FunctionAgents with handoffs, real llama-index against ScriptedLLM."""

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


async def test_react_agent_turns(traced, collector):
    from llama_index.core.agent.workflow import ReActAgent

    with ScriptedLLM(react_script) as server:
        model = OpenAILike(model="scripted-model", api_base=server.base_url, api_key="test", is_chat_model=True,
                           is_function_calling_model=True)
        researcher = ReActAgent(name="researcher", description="Finds capitals.", llm=model, tools=[lookup],
                                can_handoff_to=["writer"])
        writer = FunctionAgent(name="writer", description="Writes.", system_prompt="ROLE:WRITER", llm=model)
        workflow = AgentWorkflow(agents=[researcher, writer], root_agent="researcher")
        async with agenttrace.run("llama-index-react", task="capital of country #9", expected="capital-9") as run:
            run.finish(str(await workflow.run(user_msg="What is the capital of country #9?")))
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert [s.agent for s in traj.steps] == ["researcher", "researcher", "writer"], [
        (s.agent, s.render()[:100]) for s in traj.steps]
    assert [(c.name, c.result) for c in traj.steps[0].tool_calls] == [("lookup", "capital-9")]
    assert traj.steps[1].transfer_to == "writer"
    assert traj.outcome.value == "success"
