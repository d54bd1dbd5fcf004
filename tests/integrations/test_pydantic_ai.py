"""PydanticAI: a coordinator delegating to a researcher agent inside a tool; real pydantic-ai against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, ModelRetry, RunContext  # noqa: E402
from pydantic_ai.models.openai import OpenAIChatModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.framework("pydantic_ai")


def flush() -> None:
    assert agenttrace.setup.active().force_flush(), "spans were not exported"


def script(body: dict) -> dict | str:
    """Order-independent replies: by agent (system prompt marker) and what the conversation already holds."""
    text = json.dumps(body["messages"])
    n = re.search(r"country #(\d+)", text).group(1)
    if "ROLE:COORDINATOR" in text:
        if f"capital-{n}" in text:
            return f"The capital of country #{n} is capital-{n}."
        return {"tool_calls": [{"name": "ask_researcher", "arguments": {"question": f"capital of country #{n}"}}]}
    assert "ROLE:RESEARCHER" in text
    if f"capital-{n}" in text:
        return f"capital-{n}"
    if "search backend down" in text:
        return {"tool_calls": [{"name": "lookup", "arguments": {"country": n}}]}
    return {"tool_calls": [{"name": "broken_search", "arguments": {"query": f"country #{n}"}}]}


@pytest.fixture
def traced(instrumented):
    return instrumented("pydantic_ai")


@pytest.fixture
def llm():
    with ScriptedLLM(script) as server:
        yield server


def make_agents(llm: ScriptedLLM) -> Agent:
    model = OpenAIChatModel("scripted-model", provider=OpenAIProvider(base_url=llm.base_url, api_key="test"))
    researcher = Agent(model, name="researcher", system_prompt="ROLE:RESEARCHER. Find capitals.")

    @researcher.tool_plain
    def broken_search(query: str) -> str:
        """Searches the web."""
        raise ModelRetry("search backend down")

    @researcher.tool_plain
    def lookup(country: str) -> str:
        """Looks a capital up."""
        return f"capital-{country}"

    coordinator = Agent(model, name="coordinator", system_prompt="ROLE:COORDINATOR. Delegate research.")

    @coordinator.tool
    async def ask_researcher(ctx: RunContext, question: str) -> str:
        """Asks the researcher agent."""
        return (await researcher.run(question, usage=ctx.usage)).output

    return coordinator


async def solve(llm: ScriptedLLM, n: int) -> tuple[str, str]:
    async with agenttrace.run("pydantic-ai-capital", task=f"capital of country #{n}", expected=f"capital-{n}") as run:
        result = await make_agents(llm).run(f"What is the capital of country #{n}?")
        run.finish(result.output)
    return run.run_id, result.output


def check_trajectory(traj, n: int) -> None:
    steps = traj.steps
    assert [s.agent for s in steps] == ["coordinator", "researcher", "researcher", "researcher", "coordinator"], \
        [(s.agent, s.render()[:100]) for s in steps]
    first, r1, r2, r3, last = steps
    assert first.transfer_to == "researcher"
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("ask_researcher", {"question": f"capital of country #{n}"})]
    assert first.tool_calls[0].result == f"capital-{n}"
    assert [c.name for c in r1.tool_calls] == ["broken_search"]
    assert r1.tool_calls[0].error  # ModelRetry: the tool span is an error; the run recovers
    assert [(c.name, c.arguments, c.result) for c in r2.tool_calls] == [("lookup", {"country": str(n)}, f"capital-{n}")]
    assert r3.content == f"capital-{n}" and not r3.tool_calls
    assert last.content == f"The capital of country #{n} is capital-{n}."
    assert traj.outcome.value == "success"


async def test_delegation_tools_and_retry(traced, collector, llm, memory, owner):
    run_id, answer = await solve(llm, 7)
    assert answer == "The capital of country #7 is capital-7."
    flush()
    traj, _ = collector.wait_run(run_id)
    check_trajectory(traj, 7)
    spans = {s.context.span_id: s for s in memory.get_finished_spans()}

    chats = [s for s in spans.values() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert sorted(owner(s) for s in chats) == ["coordinator"] * 2 + ["researcher"] * 3
    researcher = next(s for s in spans.values() if s.name == "invoke_agent researcher")
    assert owner(researcher) == "coordinator"


async def test_twenty_parallel_runs(traced, collector, llm):
    results = await asyncio.gather(*(solve(llm, n) for n in range(100, 120)))
    flush()
    assert len({run_id for run_id, _ in results}) == 20
    for n, (run_id, answer) in zip(range(100, 120), results):
        assert answer == f"The capital of country #{n} is capital-{n}."
        traj, _ = collector.wait_run(run_id)
        check_trajectory(traj, n)


def test_uninstall_restores_default(collector):
    before = Agent._instrument_default
    agenttrace.instrument(endpoint=collector.endpoint, service_name="pydantic-ai-tests", frameworks=["pydantic_ai"])
    assert Agent._instrument_default is not before
    agenttrace.uninstrument()
    assert Agent._instrument_default is before
