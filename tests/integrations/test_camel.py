"""CAMEL Workforce: task planner, coordinator and two (or three) workers, real camel-ai against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("camel")

from camel.agents import ChatAgent  # noqa: E402
from camel.messages import BaseMessage  # noqa: E402
from camel.models import ModelFactory  # noqa: E402
from camel.societies.workforce import Workforce  # noqa: E402
from camel.tasks import Task  # noqa: E402
from camel.toolkits import FunctionTool  # noqa: E402
from camel.types import ModelPlatformType  # noqa: E402
from camel.utils import BaseTokenCounter  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.framework("camel")


def flush() -> None:  # tests.conftest's helper; camel-ai ships a top-level ``tests`` package that shadows ours
    assert agenttrace.setup.active().force_flush(), "spans were not exported"

RESEARCHER = "Researcher"  # a role name: the worker is traced under it
WRITER = "Writer: writes the final one-sentence answer"  # default role name: traced under its description


class CharCounter(BaseTokenCounter):
    """Counts tokens without tiktoken's encoding download (there is no network here)."""

    def count_tokens_from_messages(self, messages):
        return sum(len(str(m.get("content") or "")) for m in messages) // 4

    def encode(self, text):
        return list(text.encode())

    def decode(self, token_ids):
        return bytes(token_ids).decode(errors="replace")


def lookup(country: str) -> str:
    r"""Looks up the capital of a country.

    Args:
        country (str): the country's number.

    Returns:
        str: the capital.
    """
    return f"capital-{country}"


def broken_search(query: str) -> str:
    r"""A search backend that is down.

    Args:
        query (str): what to search for.

    Returns:
        str: never returns.
    """
    raise ValueError("search backend down")


def _text(content) -> str:
    return content if isinstance(content, str) else json.dumps(content)


def script(body: dict) -> dict | str:
    msgs = body["messages"]
    system = _text(msgs[0]["content"]) if msgs and msgs[0]["role"] == "system" else ""
    last = _text(msgs[-1].get("content"))
    everything = " ".join(_text(m.get("content")) for m in msgs)
    n = re.search(r"country #(\d+)", everything).group(1)
    if "task management assistant" in system:  # the Task Planner
        if "evaluate its quality" in last:
            return json.dumps({"quality_score": 95, "reasoning": "fine", "issues": [],
                               "recovery_strategy": None, "modified_task_content": None})
        assert "decompose" in last
        return (f"<tasks>\n<task>Find the capital of country #{n}.</task>\n"
                f"<task>Write one sentence stating the capital of country #{n}.</task>\n</tasks>")
    if "coordinating a group of workers" in system:
        section = last.split("Here are the tasks to be assigned:")[-1]
        tasks = re.findall(r"Task ID: (\S+)\s*\n?Content: (.*)", section)
        nodes = dict((desc, node_id) for node_id, desc in re.findall(r"<([0-9a-f-]{36})>:<([^>]*)>", section))
        researcher = next(i for d, i in nodes.items() if "finds capitals" in d)
        writer = next(i for d, i in nodes.items() if d == WRITER)
        find = next(t for t, c in tasks if c.startswith("Find"))
        assignments = [{"task_id": t, "assignee_id": researcher if c.startswith("Find") else writer,
                        "dependencies": [] if c.startswith("Find") else [find]} for t, c in tasks]
        return json.dumps({"assignments": assignments})
    if "You are the researcher" in system:
        if f"capital-{n}" in everything:
            return json.dumps({"content": f"capital-{n}", "failed": False})
        if "search backend down" in everything:
            return {"tool_calls": [{"name": "lookup", "arguments": {"country": n}}]}
        return {"tool_calls": [{"name": "broken_search", "arguments": {"query": f"capital of {n}"}}]}
    if "You are the writer" in system:
        return json.dumps({"content": f"The capital of country #{n} is capital-{n}.", "failed": False})
    raise AssertionError(f"unexpected request: {system[:200]!r} / {last[:300]!r}")


@pytest.fixture
def traced(instrumented):
    return instrumented("camel")


@pytest.fixture
def llm():
    with ScriptedLLM(script) as server:
        yield server


def make_workforce(llm: ScriptedLLM) -> Workforce:
    def model():
        return ModelFactory.create(model_platform=ModelPlatformType.OPENAI_COMPATIBLE_MODEL,
                                   model_type="scripted-model", url=llm.base_url, api_key="test",
                                   token_counter=CharCounter())

    workforce = Workforce("capital team", coordinator_agent=ChatAgent("Assign tasks well.", model=model()),
                          task_agent=ChatAgent("Plan tasks well.", model=model()))
    researcher = ChatAgent(
        BaseMessage.make_assistant_message(role_name=RESEARCHER, content="You are the researcher."),
        model=model(), tools=[FunctionTool(lookup), FunctionTool(broken_search)])
    workforce.add_single_agent_worker("Researcher: finds capitals with its tools", worker=researcher)
    workforce.add_single_agent_worker(WRITER, worker=ChatAgent("You are the writer.", model=model()))
    return workforce


async def solve(llm: ScriptedLLM, n: int) -> tuple[str, str]:
    async with agenttrace.run("camel-capital", task=f"capital of country #{n}", expected=f"capital-{n}") as run:
        task = await make_workforce(llm).process_task_async(
            Task(content=f"What is the capital of country #{n}? Answer in one sentence.", id="0"))
        run.finish(str(task.result))
    return run.run_id, str(task.result)


def check_trajectory(traj, n: int) -> None:
    agents = [s.agent for s in traj.steps]
    # planner decomposes, manager assigns, each worker's result is quality-checked by the planner
    assert agents == ["Task Planner", "Workforce Manager", RESEARCHER, RESEARCHER, RESEARCHER, "Task Planner",
                      WRITER, "Task Planner"], [(s.agent, s.render()[:120]) for s in traj.steps]
    assert traj.steps[0].content.startswith("<tasks>") and '"quality_score": 95' in traj.steps[5].content
    # one coordinator turn assigns both subtasks: each assignment is a handoff on that step
    manager = next(s for s in traj.steps if s.agent == "Workforce Manager")
    assert manager.transfer_to == RESEARCHER
    assert [c.name for c in manager.tool_calls] == [f"transfer_to_{RESEARCHER}", f"transfer_to_{WRITER}"]
    research = [s for s in traj.steps if s.agent == RESEARCHER]
    assert [c.name for c in research[0].tool_calls] == ["broken_search"]
    assert "search backend down" in (research[0].tool_calls[0].error or "")
    assert [(c.name, c.arguments, c.result) for c in research[1].tool_calls] == [
        ("lookup", {"country": str(n)}, f"capital-{n}")]
    assert research[1].tool_calls[0].error is None
    assert f"capital-{n}" in traj.steps[-1].content or any(f"capital-{n}" in s.content for s in traj.steps)
    assert traj.outcome.value == "success", (traj.outcome, traj.answer)


async def test_workforce_trajectory(traced, collector, llm, memory, owner):
    run_id, answer = await solve(llm, 7)
    assert "capital-7" in answer
    flush()
    traj, _ = collector.wait_run(run_id)
    check_trajectory(traj, 7)

    spans = {s.context.span_id: s for s in memory.get_finished_spans()}

    for s in spans.values():
        op = s.attributes.get("gen_ai.operation.name")
        if op in ("chat", "execute_tool"):
            assert owner(s) is not None, s.name
    tools = {s.attributes["gen_ai.tool.name"]: s for s in spans.values()
             if s.attributes.get("gen_ai.operation.name") == "execute_tool"}
    assert owner(tools["lookup"]) == RESEARCHER
    assert tools["broken_search"].status.status_code.name == "ERROR"
    handoffs = [s.attributes["agenttrace.transfer.target"] for s in spans.values()
                if "agenttrace.transfer.target" in s.attributes]
    assert sorted(handoffs) == sorted([RESEARCHER, WRITER])


STATISTICIAN = "Statistician"


def three_way_script(body: dict) -> dict | str:
    """The planner splits the question in three; one coordinator turn assigns each part to its own worker."""
    msgs = body["messages"]
    system = _text(msgs[0]["content"]) if msgs and msgs[0]["role"] == "system" else ""
    last = _text(msgs[-1].get("content"))
    n = re.search(r"country #(\d+)", " ".join(_text(m.get("content")) for m in msgs)).group(1)
    if "task management assistant" in system and "decompose" in last:
        return (f"<tasks>\n<task>Find the capital of country #{n}.</task>\n"
                f"<task>Count the population of country #{n}.</task>\n"
                f"<task>Write one sentence stating the capital and population of country #{n}.</task>\n</tasks>")
    if "coordinating a group of workers" in system:
        section = last.split("Here are the tasks to be assigned:")[-1]
        tasks = re.findall(r"Task ID: (\S+)\s*\n?Content: (.*)", section)
        nodes = {desc: node_id for node_id, desc in re.findall(r"<([0-9a-f-]{36})>:<([^>]*)>", section)}
        worker = {"Find": next(i for d, i in nodes.items() if "finds capitals" in d),
                  "Count": next(i for d, i in nodes.items() if "counts people" in d),
                  "Write": nodes[WRITER]}
        first = [t for t, c in tasks if not c.startswith("Write")]
        return json.dumps({"assignments": [
            {"task_id": t, "assignee_id": worker[c.split()[0]],
             "dependencies": first if c.startswith("Write") else []} for t, c in tasks]})
    if "You are the statistician" in system:
        return json.dumps({"content": f"country #{n} has {n} million people", "failed": False})
    return script(body)


async def test_one_coordinator_turn_assigning_three_subtasks_hands_off_to_each_worker(traced, collector, memory):
    with ScriptedLLM(three_way_script) as llm:
        workforce = make_workforce(llm)
        statistician = ChatAgent(
            BaseMessage.make_assistant_message(role_name=STATISTICIAN, content="You are the statistician."),
            model=ModelFactory.create(model_platform=ModelPlatformType.OPENAI_COMPATIBLE_MODEL,
                                      model_type="scripted-model", url=llm.base_url, api_key="test",
                                      token_counter=CharCounter()))
        workforce.add_single_agent_worker("Statistician: counts people", worker=statistician)
        async with agenttrace.run("camel-three-way", task="capital and population of country #3",
                                  expected="capital-3") as run:
            task = await workforce.process_task_async(
                Task(content="What are the capital and population of country #3? Answer in one sentence.", id="0"))
            run.finish(str(task.result))
    flush()
    traj, _ = collector.wait_run(run.run_id)

    managers = [s for s in traj.steps if s.agent == "Workforce Manager"]
    assert len(managers) == 1, [(s.agent, s.render()[:120]) for s in traj.steps]
    (manager,) = managers
    assert manager.transfer_to == RESEARCHER  # the first assignment
    assert [(c.name, c.arguments) for c in manager.tool_calls] == [
        (f"transfer_to_{RESEARCHER}", None), (f"transfer_to_{STATISTICIAN}", None), (f"transfer_to_{WRITER}", None)]
    assert f"[transfer] -> {RESEARCHER}" in manager.render() and f"transfer_to_{STATISTICIAN}" in manager.render()
    # each worker then ran its part, after the coordinator's turn
    after = traj.steps[manager.index + 1:]
    assert {RESEARCHER, STATISTICIAN, WRITER} <= {s.agent for s in after}
    assert "capital-3" in str(task.result) and traj.outcome.value == "success", (traj.outcome, traj.answer)

    handoffs = [s for s in memory.get_finished_spans() if "agenttrace.transfer.target" in s.attributes]
    assert [h.attributes["agenttrace.transfer.target"] for h in sorted(handoffs, key=lambda h: h.start_time)] == [
        RESEARCHER, STATISTICIAN, WRITER]
    assert len({h.parent.span_id for h in handoffs}) == 1  # all under the coordinator's one turn


async def test_twenty_parallel_workforces(traced, collector, llm):
    results = await asyncio.gather(*(solve(llm, n) for n in range(100, 120)))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(range(100, 120), results):
        assert f"capital-{n}" in answer
        traj, _ = collector.wait_run(run_id)
        check_trajectory(traj, n)
