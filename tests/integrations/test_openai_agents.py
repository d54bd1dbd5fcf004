"""OpenAI Agents SDK: handoffs, tools, a failing tool, agents-as-tools, 20 parallel runs, against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("agents")

from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool  # noqa: E402
from agents.tracing import set_trace_processors  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.models import Outcome  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402

pytestmark = pytest.mark.framework("openai_agents")

MEMORY = InMemorySpanExporter()


@pytest.fixture
def oa(instrumented):
    set_trace_processors([])  # no export to OpenAI's backend from tests (no network)
    MEMORY.clear()
    return instrumented("openai_agents", exporter=MEMORY)


@function_tool
def lookup_invoice(invoice_id: str) -> str:
    """Looks an invoice up."""
    return f"invoice {invoice_id}: 120 EUR, paid"


@function_tool(failure_error_function=lambda ctx, exc: f"refund failed: {exc}")
def refund(invoice_id: str) -> str:
    """Refunds an invoice."""
    raise RuntimeError(f"refunds are disabled for {invoice_id}")


@function_tool
def lookup_archived_invoice(invoice_id: str) -> str:
    """Looks an invoice up in last year's archive."""
    return f"invoice {invoice_id}: archived"


def _chat_text(m) -> str:
    c = m.get("content")
    return c if isinstance(c, str) else json.dumps(c)


def handoff_script(body):
    """Stateless (reply from request alone), so parallel runs interleave safely."""
    msgs = body["messages"]
    system = " ".join(_chat_text(m) for m in msgs if m["role"] == "system")
    user = next(_chat_text(m) for m in msgs if m["role"] == "user")
    tag = user.split("#")[-1]
    results = [_chat_text(m) for m in msgs if m["role"] == "tool"]
    if "You are triage" in system:
        return {"tool_calls": [{"name": "transfer_to_billing_agent", "arguments": {}}]}
    if "You are billing" in system:
        if not any("120 EUR" in r for r in results):
            return {"tool_calls": [{"name": "lookup_invoice", "arguments": {"invoice_id": f"INV-{tag}"}}]}
        if not any("refund failed" in r for r in results):
            return {"tool_calls": [{"name": "refund", "arguments": {"invoice_id": f"INV-{tag}"}}]}
        return f"Invoice INV-{tag} is paid; refund could not be issued."
    raise AssertionError(system)


def build_handoff_agents(llm: ScriptedLLM) -> Agent:
    client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    model = OpenAIChatCompletionsModel(model="scripted-model", openai_client=client)
    billing = Agent(name="Billing agent", instructions="You are billing.", tools=[lookup_invoice, refund], model=model,
                    handoff_description="Answers questions about invoices.")
    archive = Agent(name="Archive agent", instructions="You are the archive.", tools=[lookup_archived_invoice],
                    model=model)  # never handed the work
    return Agent(name="triage", instructions="You are triage.", handoffs=[billing, archive], model=model)


# the team the run's first agent span declares: every agent the handoffs reach, acting or not, with its tools
EXPECTED_TEAM = [("triage", None, []), ("Billing agent", "Answers questions about invoices.",
                                         [("lookup_invoice", ["invoice_id"]), ("refund", ["invoice_id"])]),
                 ("Archive agent", None, [("lookup_archived_invoice", ["invoice_id"])])]


def _team(traj):
    return [(m.name, m.description, [(t.name, t.parameters) for t in m.tools]) for m in traj.team]


def _steps(traj):
    return [(s.agent, [c.name for c in s.tool_calls], s.transfer_to) for s in traj.steps]


EXPECTED_HANDOFF = [
    ("triage", ["transfer_to_billing_agent"], "Billing agent"),  # the agent's own name, from the handoff
    ("Billing agent", ["lookup_invoice"], None),
    ("Billing agent", ["refund"], None),
    ("Billing agent", [], None),
]


async def test_handoff_tools_and_recovered_tool_error(oa, collector):
    with ScriptedLLM(handoff_script) as llm:
        triage = build_handoff_agents(llm)
        async with agenttrace.run("billing-desk", task="status of invoice #3") as run:
            result = await Runner.run(triage, "status of invoice #3")
            run.succeed(result.final_output)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _steps(traj) == EXPECTED_HANDOFF
    assert _team(traj) == EXPECTED_TEAM
    lookup, failed = traj.steps[1].tool_calls[0], traj.steps[2].tool_calls[0]
    assert lookup.arguments == {"invoice_id": "INV-3"} and lookup.result == "invoice INV-3: 120 EUR, paid"
    assert lookup.error is None
    assert failed.arguments == {"invoice_id": "INV-3"} and "refunds are disabled" in (failed.error or "")
    assert failed.result == "refund failed: refunds are disabled for INV-3"  # what the model was told
    assert traj.steps[3].content == "Invoice INV-3 is paid; refund could not be issued."
    assert traj.outcome is Outcome.SUCCESS

    spans = MEMORY.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 4
    for chat in chats:
        parent = by_id[chat.parent.span_id]
        assert parent.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert parent.attributes["gen_ai.agent.name"] == chat.attributes["gen_ai.agent.name"]
    handoffs = [s for s in spans if s.attributes.get("agenttrace.transfer.target")]
    assert [h.attributes["agenttrace.transfer.target"] for h in handoffs] == ["Billing agent"]


def orchestrator_script(body):
    """Responses API: routes on ``instructions``; state from the input items."""
    instructions = body.get("instructions") or ""
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    if "You translate" in instructions:
        return "bonjour"
    if "You orchestrate" in instructions:
        if not outputs:
            return {"tool_calls": [{"name": "translate_to_french", "arguments": {"input": "hello"}}]}
        return f"The French is: {outputs[-1]['output']}"
    raise AssertionError(instructions)


async def test_agents_as_tools_responses_api(oa, collector):
    with ScriptedLLM(orchestrator_script) as llm:
        client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        model = OpenAIResponsesModel(model="scripted-model", openai_client=client)
        translator = Agent(name="translator", instructions="You translate to French.", model=model)
        orchestrator = Agent(
            name="orchestrator", instructions="You orchestrate.", model=model,
            tools=[translator.as_tool(tool_name="translate_to_french", tool_description="Translate to French")],
        )
        async with agenttrace.run("translate", task="say hello in French", expected="bonjour") as run:
            result = await Runner.run(orchestrator, "say hello in French")
            run.finish(result.final_output)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _steps(traj) == [
        ("orchestrator", ["translate_to_french"], "translator"),  # an agent run as a tool: a delegation
        ("translator", [], None),
        ("orchestrator", [], None),
    ]
    call = traj.steps[0].tool_calls[0]
    assert call.arguments == {"input": "hello"} and call.result == "bonjour"
    assert traj.steps[1].content == "bonjour"
    assert traj.steps[2].content == "The French is: bonjour"
    assert traj.outcome is not Outcome.FAILURE


async def test_twenty_parallel_runs(oa, collector):
    with ScriptedLLM(handoff_script) as llm:
        triage = build_handoff_agents(llm)

        async def one(i: int):
            async with agenttrace.run("billing-parallel", task=f"invoice #{i}") as run:
                result = await Runner.run(triage, f"status of invoice #{i}")
                run.succeed(result.final_output)
            return run.run_id, i

        results = await asyncio.gather(*(one(i) for i in range(20)))
    flush()
    traces = set()
    for run_id, i in results:
        traj, _ = collector.wait_run(run_id)
        assert _steps(traj) == EXPECTED_HANDOFF, i
        assert traj.steps[1].tool_calls[0].arguments == {"invoice_id": f"INV-{i}"}
        assert traj.answer == f"Invoice INV-{i} is paid; refund could not be issued."
        traces.add(traj.trace_id)
    assert len(traces) == 20


async def test_streamed_run(oa, collector):
    """Runner.run_streamed (streaming Chat Completions): the same trajectory as Runner.run."""
    with ScriptedLLM(handoff_script) as llm:
        triage = build_handoff_agents(llm)
        async with agenttrace.run("billing-stream", task="status of invoice #5") as run:
            result = Runner.run_streamed(triage, "status of invoice #5")
            events = [e async for e in result.stream_events()]
            run.succeed(result.final_output)
        assert all(r.get("stream") for r in llm.requests)
    assert events
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _steps(traj) == EXPECTED_HANDOFF and _team(traj) == EXPECTED_TEAM
    assert traj.steps[1].tool_calls[0].arguments == {"invoice_id": "INV-5"}
    assert traj.answer == "Invoice INV-5 is paid; refund could not be issued."
