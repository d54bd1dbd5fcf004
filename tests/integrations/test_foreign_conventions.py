"""The collector rebuilds trajectories from the spans of instrumentors users already run, not agenttrace's.

Each test turns on ONE third-party instrumentor (agenttrace's framework
integrations stay off: ``frameworks=[]``; agenttrace only supplies the
provider's plain OTLP exporter and the ``agenttrace.run`` root span), runs a
real framework against ScriptedLLM, and checks the collector's trajectory.

* OpenInference: ``openinference-instrumentation-langchain`` (LangGraph supervisor),
  ``openinference-instrumentation-openai-agents`` (OpenAI Agents handoffs + tools)
* OpenLLMetry: ``opentelemetry-instrumentation-langchain`` - on PyPI that name is
  Traceloop's OpenLLMetry package (OpenTelemetry contrib's LangChain
  instrumentation is not published under it)
* OpenTelemetry GenAI (contrib): ``opentelemetry-instrumentation-openai-agents-v2`` (the Agents SDK's
  spans as GenAI spans) and ``opentelemetry-instrumentation-openai-v2`` on the OpenAI client, under
  manual ``agenttrace.agent_step`` spans
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("langgraph_supervisor")
pytest.importorskip("agents")

from langchain_core.messages import HumanMessage  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.models import Outcome  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402
from tests.integrations.test_langgraph import build_supervisor, supervisor_script  # noqa: E402
from tests.integrations.test_openai_agents import build_handoff_agents, handoff_script  # noqa: E402

pytestmark = pytest.mark.framework("foreign_conventions")

SUPERVISOR_STEPS = [
    ("supervisor", ["transfer_to_researcher"], "researcher"),
    ("researcher", ["search"], None),
    ("researcher", [], None),
    ("supervisor", [], None),
]
HANDOFF_STEPS = [
    ("triage", ["transfer_to_billing_agent"], "Billing agent"),
    ("Billing agent", ["lookup_invoice"], None),
    ("Billing agent", ["refund"], None),
    ("Billing agent", [], None),
]


@pytest.fixture
def plain(collector):
    """agenttrace's provider + OTLP exporter, with no agenttrace framework integration enabled."""
    handle = agenttrace.instrument(endpoint=collector.endpoint, service_name="foreign-tests", frameworks=[])
    assert not handle.integrations
    yield handle
    agenttrace.uninstrument()


def _steps(traj):
    return [(s.agent, [c.name for c in s.tool_calls], s.transfer_to) for s in traj.steps]


def _run_supervisor(collector, tag: str = "7"):
    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm)
        with agenttrace.run("supervisor", task=f"research #{tag}") as run:
            out = graph.invoke({"messages": [HumanMessage(f"research #{tag}")]})
            run.succeed(out["messages"][-1].content)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    return traj


def _check_supervisor(traj):
    assert _steps(traj) == SUPERVISOR_STEPS
    call = traj.steps[1].tool_calls[0]
    assert call.arguments == {"query": "topic 7"}
    assert "results for topic 7" in str(call.result)
    assert traj.steps[3].content == "final answer 7"
    assert traj.outcome is Outcome.SUCCESS


def test_openinference_langchain(plain, collector):
    from openinference.instrumentation.langchain import LangChainInstrumentor

    inst = LangChainInstrumentor()
    inst.instrument(tracer_provider=plain.tracer_provider)
    try:
        traj = _run_supervisor(collector)
    finally:
        inst.uninstrument()
    _check_supervisor(traj)


def test_openllmetry_langchain(plain, collector):
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor

    inst = LangchainInstrumentor()
    inst.instrument(tracer_provider=plain.tracer_provider)
    try:
        traj = _run_supervisor(collector)
    finally:
        inst.uninstrument()
        _undo_openllmetry_langchain()
    _check_supervisor(traj)


def _undo_openllmetry_langchain() -> None:
    """OpenLLMetry 0.62's uninstrument passes dotted names ("BaseCallbackManager.__init__") to unwrap,
    which ignores them: its patches stay and would trace every later test. Undo them here."""
    import importlib

    import wrapt

    targets = [("langchain_core.callbacks", "BaseCallbackManager", ["__init__"]),
               ("langgraph.pregel", "Pregel", ["stream", "astream"]),
               ("langgraph.types", "Command", ["__init__"]),
               ("langchain_openai.chat_models.base", "BaseChatOpenAI", ["_generate", "_agenerate", "_stream",
                                                                        "_astream"]),
               ("langchain_openai.llms.base", "BaseOpenAI", ["_generate", "_agenerate", "_stream", "_astream"])]
    for module, cls_name, attrs in targets:
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):
            continue
        for attr in attrs:
            while isinstance(cls.__dict__.get(attr), (wrapt.ObjectProxy, wrapt.FunctionWrapper)):
                setattr(cls, attr, cls.__dict__[attr].__wrapped__)


async def _billing_desk_traced_by(inst, plain, collector):
    """The handoff desk run once under another instrumentor (not agenttrace's); its rebuilt trajectory, checked."""
    from agents import Runner
    from agents.tracing import set_trace_processors

    set_trace_processors([])
    inst.instrument(tracer_provider=plain.tracer_provider)
    try:
        with ScriptedLLM(handoff_script) as llm:
            triage = build_handoff_agents(llm)
            async with agenttrace.run("billing-desk", task="status of invoice #3") as run:
                result = await Runner.run(triage, "status of invoice #3")
                run.succeed(result.final_output)
    finally:
        inst.uninstrument()
        set_trace_processors([])
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _steps(traj) == HANDOFF_STEPS
    lookup, failed = traj.steps[1].tool_calls[0], traj.steps[2].tool_calls[0]
    assert lookup.arguments == {"invoice_id": "INV-3"} and "120 EUR" in str(lookup.result)
    assert failed.error
    assert traj.steps[3].content == "Invoice INV-3 is paid; refund could not be issued."
    return traj


async def test_openinference_openai_agents(plain, collector):
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    traj = await _billing_desk_traced_by(OpenAIAgentsInstrumentor(), plain, collector)
    assert traj.outcome is Outcome.SUCCESS


async def test_opentelemetry_openai_agents_v2(plain, collector, monkeypatch):
    """OpenTelemetry contrib's GenAI processor for the Agents SDK (opentelemetry-instrumentation-openai-agents-v2)."""
    pytest.importorskip("opentelemetry.instrumentation.openai_agents")
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    await _billing_desk_traced_by(OpenAIAgentsInstrumentor(), plain, collector)


def test_opentelemetry_openai_v2(plain, collector, monkeypatch):
    """Official GenAI instrumentor on the OpenAI client; agents are manual agenttrace.agent_step spans."""
    import json

    from openai import OpenAI
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    tools = [{"type": "function", "function": {"name": "search", "description": "search",
                                                "parameters": {"type": "object", "properties": {
                                                    "query": {"type": "string"}}}}}]

    def script(body):
        system = body["messages"][0]["content"]
        if "planner" in system:
            return {"tool_calls": [{"name": "search", "arguments": {"query": "otel"}}]}
        return "summary of otel"

    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=plain.tracer_provider)
    try:
        with ScriptedLLM(script) as llm:
            client = OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
            with agenttrace.run("plan-write", task="explain otel") as run:
                with agenttrace.agent_step("planner", input="explain otel"):
                    msgs = [{"role": "system", "content": "You are the planner."},
                            {"role": "user", "content": "explain otel"}]
                    resp = client.chat.completions.create(model="scripted-model", messages=msgs, tools=tools)
                    call = resp.choices[0].message.tool_calls[0]
                    with agenttrace.tool_call("search", json.loads(call.function.arguments),
                                              call_id=call.id) as t:
                        t.result("OpenTelemetry is a CNCF project")
                with agenttrace.agent_step("writer"):
                    resp = client.chat.completions.create(model="scripted-model", messages=[
                        {"role": "system", "content": "You are the writer."},
                        {"role": "user", "content": "OpenTelemetry is a CNCF project"}])
                run.succeed(resp.choices[0].message.content)
    finally:
        inst.uninstrument()
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _steps(traj) == [("planner", ["search"], None), ("writer", [], None)]
    assert traj.steps[0].tool_calls[0].arguments == {"query": "otel"}
    assert traj.steps[0].tool_calls[0].result == "OpenTelemetry is a CNCF project"
    assert traj.steps[0].input == "explain otel"
    assert traj.steps[1].content == "summary of otel"
    assert traj.outcome is Outcome.SUCCESS


@pytest.fixture(autouse=True)
def _no_env_leak():
    saved = {k: os.environ.get(k) for k in ("OTEL_SEMCONV_STABILITY_OPT_IN",)}
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
