"""smolagents: a CodeAgent manager delegating to a managed ToolCallingAgent, real smolagents against ScriptedLLM."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("smolagents")

from smolagents import CodeAgent, OpenAIServerModel, ToolCallingAgent, tool  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402

pytestmark = pytest.mark.framework("smolagents")


@tool
def lookup(country: str) -> str:
    """Looks up the capital of a country.

    Args:
        country: the country's number
    """
    return f"capital-{country}"


@tool
def broken_search(query: str) -> str:
    """A search backend that is down.

    Args:
        query: what to search for
    """
    raise ValueError("search backend down")


def script(body: dict) -> dict | str:
    """Replies by agent (instructions marker) and by what the conversation already holds: order-independent."""
    text = json.dumps(body.get("messages"))
    n = re.search(r"country #(\d+)", text).group(1)
    if "ROLE:MANAGER" in text:
        if f"capital-{n}" in text:
            return f'Thought: the researcher found it.\n<code>\nfinal_answer("capital-{n}")\n</code>'
        return (f'Thought: I will ask the researcher.\n<code>\nreport = researcher(task="Find capital of country #{n}")'
                f'\nprint(report)\n</code>')
    assert "ROLE:RESEARCHER" in text
    if f"capital-{n}" in text:
        return {"tool_calls": [{"name": "final_answer", "arguments": {"answer": f"capital-{n}"}}]}
    if "search backend down" in text:
        return {"tool_calls": [{"name": "lookup", "arguments": {"country": n}}]}
    return {"tool_calls": [{"name": "broken_search", "arguments": {"query": f"capital of {n}"}}]}


@pytest.fixture
def traced(instrumented):
    return instrumented("smolagents")


@pytest.fixture
def llm():
    with ScriptedLLM(script) as server:
        yield server


def make_team(llm: ScriptedLLM) -> CodeAgent:
    model = OpenAIServerModel(model_id="scripted-model", api_base=llm.base_url, api_key="test")
    researcher = ToolCallingAgent(
        tools=[lookup, broken_search], model=model, name="researcher", instructions="ROLE:RESEARCHER",
        description="Finds capitals of countries.", max_steps=5, verbosity_level=0,
    )
    return CodeAgent(tools=[], model=model, managed_agents=[researcher], name="manager",
                     instructions="ROLE:MANAGER", max_steps=4, verbosity_level=0)


def solve(llm: ScriptedLLM, n: int) -> tuple[str, str]:
    with agenttrace.run("smolagents-capital", task=f"capital of country #{n}", expected=f"capital-{n}") as run:
        answer = make_team(llm).run(f"What is the capital of country #{n}?")
        run.finish(str(answer))
    return run.run_id, str(answer)


def check_trajectory(traj, n: int) -> None:
    agents = [s.agent for s in traj.steps]
    assert agents == ["manager", "researcher", "researcher", "researcher", "manager"], [
        (s.agent, s.render()[:120]) for s in traj.steps]
    first, r1, r2, r3, last = traj.steps
    assert first.transfer_to == "researcher"
    delegation = [c for c in first.tool_calls if c.name == "researcher"]
    assert delegation and f"country #{n}" in json.dumps(delegation[0].arguments)
    assert f"capital-{n}" in str(delegation[0].result)
    assert [c.name for c in r1.tool_calls] == ["broken_search"]
    assert "search backend down" in (r1.tool_calls[0].error or "")
    assert [(c.name, c.arguments, c.result) for c in r2.tool_calls] == [("lookup", {"country": str(n)}, f"capital-{n}")]
    assert r2.tool_calls[0].error is None
    assert [c.name for c in r3.tool_calls] == ["final_answer"]
    assert any(c.name == "final_answer" for c in last.tool_calls)
    assert traj.outcome.value == "success"
    assert traj.answer == f"capital-{n}"


def test_delegation_tools_and_errors(traced, collector, llm, memory, owner):
    run_id, answer = solve(llm, 7)
    assert answer == "capital-7"
    flush()
    traj, _ = collector.wait_run(run_id)
    check_trajectory(traj, 7)
    # the manager declares its team: itself and the agent it manages, each with its own tools
    team = {m.name: {t.name: t.parameters for t in m.tools} for m in traj.team}
    assert team == {"manager": {"final_answer": ["answer"]},
                    "researcher": {"lookup": ["country"], "broken_search": ["query"], "final_answer": ["answer"]}}
    assert [m.description for m in traj.team] == [None, "Finds capitals of countries."]

    spans = {s.context.span_id: s for s in memory.get_finished_spans()}
    agents = {s.attributes["gen_ai.agent.name"]: s for s in spans.values()
              if s.attributes.get("gen_ai.operation.name") == "invoke_agent"}
    assert set(agents) == {"manager", "researcher"}

    chats = [s for s in spans.values() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert sorted(owner(s) for s in chats) == ["manager"] * 2 + ["researcher"] * 3
    assert owner(agents["researcher"]) == "manager"  # the managed run nests under the manager
    tools = {s.attributes["gen_ai.tool.name"]: s for s in spans.values()
             if s.attributes.get("gen_ai.operation.name") == "execute_tool"}
    assert owner(tools["lookup"]) == "researcher" and owner(tools["researcher"]) == "manager"
    assert tools["broken_search"].status.status_code.name == "ERROR"


def test_twenty_parallel_runs(traced, collector, llm):
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: solve(llm, n), range(100, 120)))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(range(100, 120), results):
        assert answer == f"capital-{n}"
        traj, _ = collector.wait_run(run_id)
        check_trajectory(traj, n)


def test_streamed_run(traced, collector, llm):
    """``run(stream=True)`` yields steps; the agent span covers the whole stream and nests its calls."""
    with agenttrace.run("smolagents-capital", task="capital of country #8", expected="capital-8") as run:
        events = list(make_team(llm).run("What is the capital of country #8?", stream=True))
        run.finish(str(events[-1].output))
    flush()
    traj, _ = collector.wait_run(run.run_id)
    check_trajectory(traj, 8)
