"""Tracing overhead per agent step: uninstrumented vs agenttrace vs OpenInference, in one process.

Two workloads, each 2,000 agent steps (one step = one agent turn with one model call):

* LangGraph: a supervisor/worker StateGraph loop (supervisor node: one model call; worker node: one tool
  call + one model call), 10 steps per graph run, 200 runs.
* OpenAI Agents SDK: triage -> handoff -> billing (tool, tool, answer), 4 model calls per run, 500 runs.

To keep HTTP and the network stack out of the measurement, the model is in-process: LangChain's
``FakeMessagesListChatModel`` (langchain_core) and, for the Agents SDK, a ``Model`` subclass answering
from a script while opening the same ``generation_span`` the SDK's Chat Completions model opens.
Everything else is the real framework. Every instrumented mode exports to an ``InMemorySpanExporter``
through a ``BatchSpanProcessor``; agenttrace's mode is ``agenttrace.instrument(exporter=...)`` (with its
run-stamping processor and content capture on), OpenInference's is its instrumentor on its own provider.
Each run is wrapped in ``agenttrace.run`` in every mode (a no-op span when uninstrumented).

    python bench/overhead.py [--steps 2000] [--repeat 3]
    nox -s bench_overhead
"""


import os

# a queue big enough that no mode drops spans (dropping would make a mode look cheaper than it is)
os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", "1000000")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Annotated, TypedDict  # noqa: E402

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import agenttrace  # noqa: E402

# ---------------------------------------------------------------------------------------------- LangGraph
LG_STEPS_PER_RUN = 10


def build_langgraph():
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.message import add_messages

    @tool
    def search(query: str) -> str:
        """Search for a query."""
        return f"results for {query}"

    supervisor_model = FakeMessagesListChatModel(responses=[AIMessage("delegate to worker")])
    worker_model = FakeMessagesListChatModel(responses=[AIMessage("worker found something")])

    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        turns: int

    def supervisor(state: State):
        reply = supervisor_model.invoke([SystemMessage("You are the supervisor."), *state["messages"][-4:]])
        return {"messages": [reply], "turns": state["turns"] + 1}

    def worker(state: State):
        found = search.invoke({"query": f"q{state['turns']}"})
        reply = worker_model.invoke([SystemMessage("You are the worker."), *state["messages"][-4:],
                                     HumanMessage(found)])
        return {"messages": [reply], "turns": state["turns"] + 1}

    def route(state: State) -> str:
        return END if state["turns"] >= LG_STEPS_PER_RUN else "supervisor"

    g = StateGraph(State)
    g.add_node("supervisor", supervisor)
    g.add_node("worker", worker)
    g.add_edge(START, "supervisor")
    g.add_edge("supervisor", "worker")
    g.add_conditional_edges("worker", route, ["supervisor", END])
    graph = g.compile()

    def run_once(i: int) -> None:
        with agenttrace.run("bench-langgraph", task=f"task {i}"):
            out = graph.invoke({"messages": [HumanMessage(f"task {i}")], "turns": 0},
                               {"recursion_limit": 4 * LG_STEPS_PER_RUN})
            assert out["turns"] == LG_STEPS_PER_RUN

    return run_once, LG_STEPS_PER_RUN


# ------------------------------------------------------------------------------------------ OpenAI Agents
OA_STEPS_PER_RUN = 4


def build_openai_agents():
    from agents import Agent, Model, ModelResponse, Runner, Usage, function_tool
    from agents.tracing import generation_span
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    @function_tool
    def lookup_invoice(invoice_id: str) -> str:
        """Looks an invoice up."""
        return f"invoice {invoice_id}: paid"

    @function_tool
    def check_refund(invoice_id: str) -> str:
        """Checks a refund."""
        return "no refund"

    class ScriptModel(Model):
        """In-process model: replies from the conversation so far, traced like the SDK's own models."""

        def __init__(self) -> None:
            self.n = 0

        async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                               tracing, *, previous_response_id=None, conversation_id=None, prompt=None, **kw):
            self.n += 1
            items = input if isinstance(input, list) else [{"role": "user", "content": input}]
            outputs = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output")
            if "triage" in (system_instructions or ""):
                out = [self._call("transfer_to_billing", "{}")]
            elif outputs < 2:
                out = [self._call("lookup_invoice", '{"invoice_id": "INV-1"}')]
            elif outputs < 3:
                out = [self._call("check_refund", '{"invoice_id": "INV-1"}')]
            else:
                out = [ResponseOutputMessage(id=f"m{self.n}", type="message", role="assistant", status="completed",
                                             content=[ResponseOutputText(type="output_text", text="paid, no refund",
                                                                         annotations=[])])]
            with generation_span(model="bench-model", disabled=tracing.is_disabled()) as span:
                if tracing.include_data():
                    span.span_data.input = [{"role": "system", "content": system_instructions}, *items]
                    span.span_data.output = [o.model_dump() for o in out]
                span.span_data.usage = {"input_tokens": 10, "output_tokens": 5}
            return ModelResponse(output=out, usage=Usage(requests=1, input_tokens=10, output_tokens=5),
                                 response_id=None)

        def _call(self, name: str, args: str):
            return ResponseFunctionToolCall(id=f"fc{self.n}", call_id=f"call{self.n}", type="function_call",
                                            name=name, arguments=args, status="completed")

        def stream_response(self, *args, **kwargs):  # pragma: no cover - not used
            raise NotImplementedError

    model = ScriptModel()
    billing = Agent(name="billing", instructions="You are billing.", tools=[lookup_invoice, check_refund],
                    model=model)
    triage = Agent(name="triage", instructions="You are triage.", handoffs=[billing], model=model)
    loop = asyncio.new_event_loop()

    async def one(i: int) -> None:
        async with agenttrace.run("bench-openai-agents", task=f"invoice {i}"):
            result = await Runner.run(triage, f"status of invoice {i}")
            assert result.final_output == "paid, no refund"

    def run_once(i: int) -> None:
        loop.run_until_complete(one(i))

    return run_once, OA_STEPS_PER_RUN


# ------------------------------------------------------------------------------------------------- modes
class Mode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.exporter = InMemorySpanExporter()
        self._undo = []

    def spans(self) -> int:
        return len(self.exporter.get_finished_spans())


def _oa_reset():
    try:
        from agents.tracing import set_trace_processors

        set_trace_processors([])  # never export to OpenAI's backend from the bench
    except ImportError:
        pass


def enter(mode: Mode, workload: str):
    _oa_reset()
    if mode.name == "agenttrace":
        handle = agenttrace.instrument(service_name="bench", frameworks=[
            "langchain" if workload == "langgraph" else "openai_agents"], exporter=mode.exporter)
        return lambda: (handle.force_flush(), agenttrace.uninstrument())
    if mode.name == "openinference":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(mode.exporter))
        if workload == "langgraph":
            from openinference.instrumentation.langchain import LangChainInstrumentor as Inst
        else:
            from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor as Inst
        inst = Inst()
        inst.instrument(tracer_provider=provider)
        return lambda: (provider.force_flush(), inst.uninstrument(), provider.shutdown())
    return lambda: None


def measure(workload: str, steps: int, repeat: int) -> dict[str, float]:
    run_once, per_run = build_langgraph() if workload == "langgraph" else build_openai_agents()
    runs = max(1, steps // per_run)
    for i in range(3):  # warm-up (imports, lazy init) outside the measurement
        run_once(i)
    results: dict[str, list[float]] = {"uninstrumented": [], "agenttrace": [], "openinference": []}
    span_counts: dict[str, int] = {}
    for _ in range(repeat):  # interleaved rounds: drift (CPU frequency, GC) hits every mode alike
        for name in results:
            mode = Mode(name)
            leave = enter(mode, workload)
            gc.collect()
            t0 = time.perf_counter()
            for i in range(runs):
                run_once(i)
            elapsed = time.perf_counter() - t0
            leave()
            results[name].append(elapsed / (runs * per_run))
            span_counts[name] = mode.spans() // runs
    _oa_reset()
    per_step = {name: statistics.median(v) for name, v in results.items()}
    base = per_step["uninstrumented"]
    print(f"\n{workload}: {runs} runs x {per_run} steps = {runs * per_run} agent steps, median of {repeat} rounds")
    print(f"  {'mode':<16}{'ms/step':>10}{'added ms/step':>16}{'x uninstr.':>12}{'spans/run':>11}")
    for name, t in per_step.items():
        print(f"  {name:<16}{t * 1e3:>10.3f}{(t - base) * 1e3:>16.3f}{t / base:>12.2f}{span_counts.get(name, 0):>11}")
    added_at = per_step["agenttrace"] - base
    added_oi = per_step["openinference"] - base
    ratio = added_at / added_oi if added_oi > 0 else float("inf")
    print(f"  agenttrace added time / OpenInference added time = {ratio:.2f}"
          f" ({'within' if ratio <= 1.0 else 'OVER'} target <= 1.0)")
    return per_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["langgraph", "openai_agents"])
    args = ap.parse_args()
    print("model: in-process (LangChain FakeMessagesListChatModel / an Agents SDK Model subclass), no HTTP;"
          " exporters: InMemorySpanExporter via BatchSpanProcessor")
    for workload in ("langgraph", "openai_agents"):
        if args.only in (None, workload):
            measure(workload, args.steps, args.repeat)


if __name__ == "__main__":
    main()
