"""CrewAI: sequential and hierarchical crews and coworker delegation, real crewai against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
# CrewAI stores task outputs in a per-project SQLite db under the user's data dir: keep tests out of it
# (and out of a db another CrewAI version wrote)
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="agenttrace-crewai-tests-"))

pytest.importorskip("crewai")

from crewai import LLM, Agent, Crew, Process, Task  # noqa: E402
from crewai.llms.providers.openai.completion import OpenAICompletion  # noqa: E402
from crewai.tools import tool  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.framework("crewai")

RESEARCHER, WRITER, MANAGER = "Researcher", "Writer", "Crew Manager"


def flush() -> None:
    assert agenttrace.setup.active().force_flush(), "spans were not exported"


@tool("lookup")
def lookup(country: str) -> str:
    """Looks up the capital of a country (by its number)."""
    return f"capital-{country}"


@tool("broken_search")
def broken_search(query: str) -> str:
    """A search backend that is down."""
    raise ValueError("search backend down")


def _text(content) -> str:
    return content if isinstance(content, str) else json.dumps(content)


def script(body: dict) -> dict | str:
    """Replies per agent (by system prompt) and per crew (the country number in the conversation)."""
    msgs = body["messages"]
    system = _text(msgs[0]["content"]) if msgs and msgs[0]["role"] == "system" else ""
    everything = " ".join(_text(m.get("content")) for m in msgs)
    n = re.search(r"country #(\d+)", everything).group(1)
    tool_results = [_text(m.get("content")) for m in msgs if m["role"] == "tool"]
    if system.startswith(f"You are {MANAGER}."):
        if tool_results:
            return f"Final report: the capital of country #{n} is {tool_results[-1]}."
        return {"tool_calls": [{"name": "delegate_work_to_coworker", "arguments": {
            "task": f"Find the capital of country #{n}", "context": "Use your lookup tool.", "coworker": RESEARCHER}}]}
    if system.startswith(f"You are {RESEARCHER}."):
        if any(f"capital-{n}" in r for r in tool_results):
            return f"capital-{n}"
        if "broken_search" in json.dumps(body.get("tools") or []) and not tool_results:
            return {"tool_calls": [{"name": "broken_search", "arguments": {"query": f"capital of {n}"}}]}
        return {"tool_calls": [{"name": "lookup", "arguments": {"country": n}}]}
    if system.startswith(f"You are {WRITER}."):
        if "ask_question_to_coworker" in json.dumps(body.get("tools") or []) and not tool_results:
            return {"tool_calls": [{"name": "ask_question_to_coworker", "arguments": {
                "question": f"What is the capital of country #{n}?", "context": "for the report",
                "coworker": RESEARCHER}}]}
        return f"The capital of country #{n} is capital-{n}."
    raise AssertionError(f"unexpected request: {system[:200]!r}")


def react_script(body: dict) -> str:
    """CrewAI's ReAct text format (a model without function calling): Thought / Action / Action Input / Final Answer."""
    assert not body.get("tools")
    msgs = body["messages"]
    system = _text(msgs[0]["content"])
    n = re.search(r"country #(\d+)", " ".join(_text(m.get("content")) for m in msgs)).group(1)
    later = " ".join(_text(m.get("content")) for m in msgs[2:])  # what came after the task prompt
    if system.startswith(f"You are {MANAGER}."):
        if f"capital-{n}" in later:
            return f"Thought: I have it.\nFinal Answer: Final report: the capital of country #{n} is capital-{n}."
        return ("Thought: The researcher should find it.\nAction: Delegate work to coworker\nAction Input: "
                + json.dumps({"task": f"Find the capital of country #{n}", "context": "Use your lookup tool.",
                              "coworker": RESEARCHER}))
    if system.startswith(f"You are {RESEARCHER}."):
        if f"capital-{n}" in later:
            return f"Thought: Found it.\nFinal Answer: capital-{n}"
        return "Thought: Look it up.\nAction: lookup\nAction Input: " + json.dumps({"country": n})
    raise AssertionError(f"unexpected request: {system[:200]!r}")


class NoFunctionCallingLLM(OpenAICompletion):
    """CrewAI's OpenAI client for a model without function calling: agents fall back to the ReAct text format."""

    def supports_function_calling(self) -> bool:
        return False


@pytest.fixture
def traced(instrumented):
    return instrumented("crewai")


@pytest.fixture(scope="module")
def llm():
    with ScriptedLLM(script) as server:
        yield server


def _model(llm: ScriptedLLM) -> LLM:
    # a model name CrewAI knows: before 1.11 other names need the LiteLLM fallback (not installed here)
    return LLM(model="openai/gpt-4o-mini", base_url=llm.base_url, api_key="test")


def sequential_crew(llm: ScriptedLLM, n: int, *, writer_delegates: bool = False) -> Crew:
    researcher = Agent(role=RESEARCHER, goal="Find capitals with your tools.", backstory="A meticulous researcher.",
                       llm=_model(llm), tools=[broken_search, lookup], allow_delegation=False)
    writer = Agent(role=WRITER, goal="Write one-sentence answers.", backstory="A concise writer.",
                   llm=_model(llm), allow_delegation=writer_delegates)
    research = Task(description=f"Find the capital of country #{n}.", expected_output="the capital",
                    agent=researcher)
    write = Task(description=f"Write one sentence stating the capital of country #{n}.",
                 expected_output="one sentence", agent=writer, context=[] if writer_delegates else [research])
    return Crew(agents=[researcher, writer], tasks=[write] if writer_delegates else [research, write],
                process=Process.sequential, verbose=False)


def hierarchical_crew(llm: ScriptedLLM, n: int) -> Crew:
    researcher = Agent(role=RESEARCHER, goal="Find capitals with your tools.", backstory="A meticulous researcher.",
                       llm=_model(llm), tools=[lookup], allow_delegation=False)
    writer = Agent(role=WRITER, goal="Write one-sentence answers.", backstory="A concise writer.", llm=_model(llm))
    task = Task(description=f"(hierarchical) Report the capital of country #{n}.", expected_output="a report")
    return Crew(agents=[researcher, writer], tasks=[task], process=Process.hierarchical, manager_llm=_model(llm),
                verbose=False)


def kickoff(crew: Crew, n: int, name: str = "crewai-capital") -> tuple[str, str]:
    with agenttrace.run(name, task=f"capital of country #{n}", expected=f"capital-{n}") as run:
        answer = str(crew.kickoff())
        run.finish(answer)
    return run.run_id, answer


def check_sequential(traj, n: int) -> None:
    where = [(s.agent, s.render()[:120]) for s in traj.steps]
    assert [s.agent for s in traj.steps] == [RESEARCHER, RESEARCHER, RESEARCHER, WRITER], where
    first, second, third, last = traj.steps
    assert [c.name for c in first.tool_calls] == ["broken_search"], where
    assert first.tool_calls[0].arguments == {"query": f"capital of {n}"}
    assert "search backend down" in (first.tool_calls[0].error or ""), first.tool_calls
    assert [(c.name, c.arguments, c.result, c.error) for c in second.tool_calls] == [
        ("lookup", {"country": str(n)}, f"capital-{n}", None)], second.tool_calls
    assert third.content == f"capital-{n}" and not third.tool_calls
    assert last.content == f"The capital of country #{n} is capital-{n}."
    assert f"Find the capital of country #{n}" in (first.input or "")
    assert traj.outcome.value == "success", (traj.outcome, traj.failure_reason)


def test_sequential_crew(traced, collector, llm, memory, owner):
    run_id, answer = kickoff(sequential_crew(llm, 7), 7)
    assert answer == "The capital of country #7 is capital-7."
    flush()
    traj, _ = collector.wait_run(run_id)
    check_sequential(traj, 7)
    # the crew declares its team, each agent with the tools it can call (the app's run declares none)
    assert [(m.name, m.description, [(t.name, t.parameters) for t in m.tools]) for m in traj.team] == [
        (RESEARCHER, "Find capitals with your tools.", [("broken_search", ["query"]), ("lookup", ["country"])]),
        (WRITER, "Write one-sentence answers.", [])]

    spans = {s.context.span_id: s for s in memory.get_finished_spans()}
    ops = [s.attributes.get("gen_ai.operation.name") for s in spans.values()]
    assert ops.count("invoke_agent") == 2 and ops.count("chat") == 4 and ops.count("execute_tool") == 2
    for s in spans.values():
        if s.attributes.get("gen_ai.operation.name") == "chat":
            assert owner(s) == s.attributes["gen_ai.agent.name"], s.name
    tools = {s.attributes["gen_ai.tool.name"]: s for s in spans.values()
             if s.attributes.get("gen_ai.operation.name") == "execute_tool"}
    assert owner(tools["lookup"]) == RESEARCHER
    assert tools["broken_search"].status.status_code.name == "ERROR"
    assert tools["lookup"].attributes.get("gen_ai.tool.call.id")  # the id of the model's call it answers
    run_span = next(s for s in spans.values() if s.attributes.get("agenttrace.span.kind") == "run")
    for s in spans.values():
        assert s.context.trace_id == run_span.context.trace_id
    # the kickoff is an invoke_workflow span (CrewAI's default crew name) between the run and the agents
    [crew] = [s for s in spans.values() if s.attributes.get("gen_ai.operation.name") == "invoke_workflow"]
    assert crew.name == "invoke_workflow crew" and crew.attributes["gen_ai.workflow.name"] == "crew"
    assert crew.parent.span_id == run_span.context.span_id
    assert "The capital of country #7 is capital-7." in crew.attributes["gen_ai.output.messages"]
    assert {spans[s.parent.span_id].name for s in spans.values()
            if s.attributes.get("gen_ai.operation.name") == "invoke_agent"} == {crew.name}


def test_hierarchical_crew_delegates(traced, collector, llm, memory, owner):
    run_id, answer = kickoff(hierarchical_crew(llm, 8), 8, "crewai-hierarchical")
    assert answer == "Final report: the capital of country #8 is capital-8."
    flush()
    traj, _ = collector.wait_run(run_id)
    where = [(s.agent, s.transfer_to, s.render()[:120]) for s in traj.steps]
    assert [s.agent for s in traj.steps] == [MANAGER, RESEARCHER, RESEARCHER, MANAGER], where
    assert traj.steps[0].transfer_to == RESEARCHER, where
    assert [c.name for c in traj.steps[0].tool_calls] == ["delegate_work_to_coworker"]
    assert traj.steps[0].tool_calls[0].result == "capital-8"
    assert [(c.name, c.result) for c in traj.steps[1].tool_calls] == [("lookup", "capital-8")]
    assert traj.steps[-1].content == answer
    assert traj.outcome.value == "success"

    spans = {s.context.span_id: s for s in memory.get_finished_spans()}
    delegate = next(s for s in spans.values() if s.attributes.get("gen_ai.tool.name") == "delegate_work_to_coworker")
    assert delegate.attributes["agenttrace.transfer.target"] == RESEARCHER
    assert owner(delegate) == MANAGER
    researcher = next(s for s in spans.values() if s.attributes.get("gen_ai.agent.name") == RESEARCHER
                      and s.attributes.get("gen_ai.operation.name") == "invoke_agent")
    assert researcher.parent.span_id == delegate.context.span_id  # the coworker runs inside the delegation


def test_allow_delegation_ask_question(traced, collector, llm):
    run_id, answer = kickoff(sequential_crew(llm, 9, writer_delegates=True), 9, "crewai-ask")
    assert answer == "The capital of country #9 is capital-9."
    flush()
    traj, _ = collector.wait_run(run_id)
    where = [(s.agent, s.transfer_to, s.render()[:120]) for s in traj.steps]
    assert [s.agent for s in traj.steps] == [WRITER, RESEARCHER, RESEARCHER, RESEARCHER, WRITER], where
    assert traj.steps[0].transfer_to == RESEARCHER
    assert traj.steps[0].tool_calls[0].name == "ask_question_to_coworker"
    assert traj.outcome.value == "success"


def test_react_text_format_hierarchical(traced, collector, memory):
    with ScriptedLLM(react_script) as server:
        def model():
            return NoFunctionCallingLLM(model="scripted-model", base_url=server.base_url, api_key="test")

        researcher = Agent(role=RESEARCHER, goal="Find capitals with your tools.", backstory="A researcher.",
                           llm=model(), tools=[lookup], allow_delegation=False)
        writer = Agent(role=WRITER, goal="Write one-sentence answers.", backstory="A writer.", llm=model())
        crew = Crew(agents=[researcher, writer], process=Process.hierarchical, manager_llm=model(), verbose=False,
                    tasks=[Task(description="Report the capital of country #5.", expected_output="a report")])
        run_id, answer = kickoff(crew, 5, "crewai-react")
    assert answer == "Final report: the capital of country #5 is capital-5."
    flush()
    traj, _ = collector.wait_run(run_id)
    where = [(s.agent, s.transfer_to, [c.name for c in s.tool_calls], s.render()[:100]) for s in traj.steps]
    assert [s.agent for s in traj.steps] == [MANAGER, RESEARCHER, RESEARCHER, MANAGER], where
    assert traj.steps[0].transfer_to == RESEARCHER, where
    delegation = traj.steps[0].tool_calls
    assert [(c.name, c.arguments["coworker"], c.result) for c in delegation] == [
        ("Delegate work to coworker", RESEARCHER, "capital-5")], delegation
    assert [(c.name, c.arguments, c.result) for c in traj.steps[1].tool_calls] == [
        ("lookup", {"country": "5"}, "capital-5")], where
    assert traj.outcome.value == "success"


def test_twenty_parallel_crews(traced, collector, llm):
    numbers = range(100, 120)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: kickoff(sequential_crew(llm, n), n), numbers))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(numbers, results):
        assert answer == f"The capital of country #{n} is capital-{n}."
        traj, _ = collector.wait_run(run_id)
        check_sequential(traj, n)


async def test_twenty_parallel_native_async_crews(traced, collector, llm):
    async def akickoff(n: int) -> tuple[str, str]:
        async with agenttrace.run("crewai-async", task=f"capital of country #{n}", expected=f"capital-{n}") as run:
            answer = str(await sequential_crew(llm, n).akickoff())
            run.finish(answer)
        return run.run_id, answer

    numbers = range(200, 220)
    results = await asyncio.gather(*(akickoff(n) for n in numbers))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(numbers, results):
        assert answer == f"The capital of country #{n} is capital-{n}."
        traj, _ = collector.wait_run(run_id)
        check_sequential(traj, n)


def test_uninstrument_restores_the_event_bus(collector):
    from crewai.events.event_bus import CrewAIEventsBus

    original = CrewAIEventsBus.emit
    agenttrace.instrument(endpoint=collector.endpoint, service_name="crewai-tests", frameworks=["crewai"])
    assert CrewAIEventsBus.emit is not original
    agenttrace.uninstrument()
    assert CrewAIEventsBus.emit is original
    agenttrace.uninstrument()  # idempotent
    assert CrewAIEventsBus.emit is original
