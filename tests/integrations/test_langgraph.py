"""LangGraph / LangChain: real graphs (supervisor, swarm, parallel branches), ChatOpenAI against ScriptedLLM."""

from __future__ import annotations

import asyncio
import json
import operator
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.models import Outcome  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.conftest import flush  # noqa: E402

pytestmark = pytest.mark.framework("langgraph")

MEMORY = InMemorySpanExporter()


@pytest.fixture
def lc(instrumented):
    MEMORY.clear()
    return instrumented("langchain", exporter=MEMORY)


def _system(body) -> str:
    return "\n".join(m.get("content") or "" for m in body.get("messages", [])
                     if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str))


def _task_tag(body) -> str:
    for m in body.get("messages", []):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"].split("#")[-1] if "#" in m["content"] else ""
    return ""


def _tool_results(body) -> list[str]:
    return [m.get("content") for m in body.get("messages", []) if m.get("role") == "tool"]


def _model(llm: ScriptedLLM, streaming: bool = False) -> ChatOpenAI:
    return ChatOpenAI(model="scripted-model", base_url=llm.base_url, api_key="test", max_retries=0,
                      streaming=streaming)


@tool
def search(query: str) -> str:
    """Search the web for a query."""
    return f"results for {query}"


@tool
def flaky_lookup(key: str) -> str:
    """Look a key up in a database that is down."""
    raise RuntimeError(f"database unavailable for {key}")


def supervisor_script(body):
    """Stateless: each reply depends only on the request, so interleaved parallel runs stay consistent."""
    system, tag, results = _system(body), _task_tag(body), _tool_results(body)
    if "You are the researcher" in system:
        if not any(r and r.startswith("results for") for r in results):
            return {"tool_calls": [{"name": "search", "arguments": {"query": f"topic {tag}"}}]}
        return f"research done {tag}"
    # supervisor: delegate once, then answer
    if not any(r and "transferred" in r.lower() for r in results):
        return {"tool_calls": [{"name": "transfer_to_researcher", "arguments": {}}]}
    return f"final answer {tag}"


def build_supervisor(llm: ScriptedLLM, streaming: bool = False):
    from langgraph.prebuilt import create_react_agent
    from langgraph_supervisor import create_supervisor

    researcher = create_react_agent(_model(llm, streaming), [search], name="researcher",
                                    prompt="You are the researcher.")
    return create_supervisor([researcher], model=_model(llm, streaming),
                             prompt="You are the supervisor.").compile()


def _agent_steps(traj):
    return [(s.agent, [c.name for c in s.tool_calls], s.transfer_to) for s in traj.steps]


def test_supervisor_trajectory(lc, collector):
    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm)
        with agenttrace.run("supervisor", task="research #7") as run:
            out = graph.invoke({"messages": [HumanMessage("research #7")]})
            run.succeed(out["messages"][-1].content)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _agent_steps(traj) == [
        ("supervisor", ["transfer_to_researcher"], "researcher"),
        ("researcher", ["search"], None),
        ("researcher", [], None),
        ("supervisor", [], None),
    ]
    call = traj.steps[1].tool_calls[0]
    assert call.arguments == {"query": "topic 7"} and call.result == "results for topic 7" and call.error is None
    assert traj.steps[2].content == "research done 7"
    assert traj.steps[3].content == "final answer 7"
    assert traj.outcome is Outcome.SUCCESS and traj.answer == "final answer 7"
    # the graph declares its team: each agent node with its ToolNode's tools (the supervisor's hand-off too)
    assert [(m.name, [(t.name, t.parameters) for t in m.tools]) for m in traj.team] == [
        ("supervisor", [("transfer_to_researcher", [])]), ("researcher", [("search", ["query"])])]

    # LLM spans nest under the agent that made them
    spans = MEMORY.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 4
    for chat in chats:
        parent = by_id[chat.parent.span_id]
        assert parent.attributes.get("gen_ai.operation.name") == "invoke_agent"
        assert parent.attributes["gen_ai.agent.name"] == chat.attributes["gen_ai.agent.name"]
    tools = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert {by_id[t.parent.span_id].attributes["gen_ai.agent.name"] for t in tools
            if t.attributes["gen_ai.tool.name"] == "search"} == {"researcher"}
    assert all(s.context.trace_id == chats[0].context.trace_id for s in spans
               if s.attributes.get("agenttrace.run.id") == run.run_id)
    # the graph invocation is an invoke_workflow span around its agents (LangGraph's default graph name)
    [flow] = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "invoke_workflow"]
    assert flow.name == "invoke_workflow LangGraph" and flow.attributes["gen_ai.workflow.name"] == "LangGraph"
    assert "final answer 7" in flow.attributes["gen_ai.output.messages"]
    supervisors = [s for s in spans if s.attributes.get("gen_ai.agent.name") == "supervisor"
                   and s.attributes.get("gen_ai.operation.name") == "invoke_agent"]
    assert supervisors and all(s.parent.span_id == flow.context.span_id for s in supervisors)
    assert by_id[flow.parent.span_id].attributes.get("agenttrace.run.id") == run.run_id


async def test_streamed_supervisor(lc, collector):
    """astream(stream_mode="messages") over a streaming ChatOpenAI: same trajectory as invoke."""
    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm, streaming=True)
        async with agenttrace.run("supervisor-stream", task="research #9") as run:
            chunks = [c async for c in graph.astream({"messages": [HumanMessage("research #9")]},
                                                     stream_mode="messages")]
            run.succeed("final answer 9")
        assert all(r.get("stream") for r in llm.requests)  # the model really streamed
    assert chunks
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _agent_steps(traj) == [
        ("supervisor", ["transfer_to_researcher"], "researcher"),
        ("researcher", ["search"], None),
        ("researcher", [], None),
        ("supervisor", [], None),
    ]
    assert traj.steps[1].tool_calls[0].arguments == {"query": "topic 9"}
    assert traj.steps[3].content == "final answer 9"
    assert [m.name for m in traj.team] == ["supervisor", "researcher"]


def test_named_team_graph_is_a_wrapper_not_a_step(lc, collector):
    """A root graph compiled with its own name is an agent span around its members, adding no step."""
    from langgraph.prebuilt import create_react_agent
    from langgraph_supervisor import create_supervisor

    with ScriptedLLM(supervisor_script) as llm:
        researcher = create_react_agent(_model(llm), [search], name="researcher", prompt="You are the researcher.")
        team = create_supervisor([researcher], model=_model(llm), prompt="You are the supervisor.").compile(
            name="team")
        with agenttrace.run("team", task="research #8") as run:
            out = team.invoke({"messages": [HumanMessage("research #8")]})
            run.succeed(out["messages"][-1].content)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _agent_steps(traj) == [
        ("supervisor", ["transfer_to_researcher"], "researcher"),
        ("researcher", ["search"], None),
        ("researcher", [], None),
        ("supervisor", [], None),
    ]
    agents = {s.attributes["gen_ai.agent.name"] for s in MEMORY.get_finished_spans()
              if s.attributes.get("gen_ai.operation.name") == "invoke_agent"}
    assert agents == {"team", "supervisor", "researcher"}
    spans = {s.context.span_id: s for s in MEMORY.get_finished_spans()}
    [team_span] = [s for s in spans.values() if s.name == "invoke_agent team"]
    assert spans[team_span.parent.span_id].attributes["gen_ai.workflow.name"] == "team"  # the workflow around it


def swarm_script(body):
    system, results = _system(body), _tool_results(body)
    if "You are Alice" in system:
        return {"tool_calls": [{"name": "transfer_to_bob", "arguments": {}}]}
    if "You are Bob" in system:
        if not any(r and "database unavailable" in r for r in results):
            return {"tool_calls": [{"name": "flaky_lookup", "arguments": {"key": "k1"}}]}
        return "the database is down, answering from memory: 42"
    raise AssertionError(system)


def test_swarm_handoff_and_recovered_tool_error(lc, collector):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import ToolNode, create_react_agent
    from langgraph_swarm import create_handoff_tool, create_swarm

    with ScriptedLLM(swarm_script) as llm:
        alice = create_react_agent(_model(llm), [create_handoff_tool(agent_name="bob")], name="alice",
                                   prompt="You are Alice.")
        bob = create_react_agent(_model(llm), ToolNode([flaky_lookup], handle_tool_errors=True), name="bob", prompt="You are Bob.")
        graph = create_swarm([alice, bob], default_active_agent="alice").compile(checkpointer=InMemorySaver())
        with agenttrace.run("swarm", task="what is the answer?", expected="42") as run:
            out = graph.invoke({"messages": [HumanMessage("what is the answer?")]},
                               {"configurable": {"thread_id": "t1"}})
            run.finish(out["messages"][-1].content)
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert _agent_steps(traj) == [
        ("alice", ["transfer_to_bob"], "bob"),
        ("bob", ["flaky_lookup"], None),
        ("bob", [], None),
    ]
    failed = traj.steps[1].tool_calls[0]
    assert failed.arguments == {"key": "k1"}
    assert failed.error and "database unavailable" in failed.error
    assert traj.steps[0].tool_calls[0].error is None
    assert traj.outcome is not Outcome.FAILURE and "42" in traj.answer
    assert [(m.name, [(t.name, t.parameters) for t in m.tools]) for m in traj.team] == [
        ("alice", [("transfer_to_bob", [])]), ("bob", [("flaky_lookup", ["key"])])]


class BranchState(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


def build_parallel(llm: ScriptedLLM):
    from langgraph.graph import END, START, StateGraph

    model = _model(llm)

    def researcher(state: BranchState):
        reply = model.invoke([("system", "You are the researcher."), ("user", state["topic"])])
        return {"notes": [reply.content]}

    def writer(state: BranchState):
        reply = model.invoke([("system", "You are the writer."), ("user", state["topic"])])
        return {"notes": [reply.content]}

    def editor(state: BranchState):
        reply = model.invoke([("system", "You are the editor."), ("user", " | ".join(sorted(state["notes"])))])
        return {"notes": [reply.content]}

    g = StateGraph(BranchState)
    g.add_node("researcher", researcher)
    g.add_node("writer", writer)
    g.add_node("editor", editor)
    g.add_edge(START, "researcher")
    g.add_edge(START, "writer")
    g.add_edge(["researcher", "writer"], "editor")
    g.add_edge("editor", END)
    return g.compile()


def branch_script(body):
    system = _system(body)
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    for role in ("researcher", "writer", "editor"):
        if f"You are the {role}" in system:
            return f"{role}: {user}"
    raise AssertionError(system)


def test_parallel_branches(lc, collector):
    with ScriptedLLM(branch_script) as llm:
        graph = build_parallel(llm)
        with agenttrace.run("branches", task="otel") as run:
            out = graph.invoke({"topic": "otel", "notes": []})
            run.succeed(out["notes"][-1])
    flush()
    traj, _ = collector.wait_run(run.run_id)
    agents = [s.agent for s in traj.steps]
    assert sorted(agents[:2]) == ["researcher", "writer"] and agents[2:] == ["editor"]
    assert {s.agent: s.content for s in traj.steps}["writer"] == "writer: otel"
    assert traj.steps[2].content.startswith("editor: researcher: otel | writer: otel")
    assert traj.outcome is Outcome.SUCCESS


async def test_twenty_parallel_runs(lc, collector):
    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm)

        async def one(i: int):
            async with agenttrace.run("supervisor-parallel", task=f"research #{i}") as run:
                out = await graph.ainvoke({"messages": [HumanMessage(f"research #{i}")]})
                run.succeed(out["messages"][-1].content)
            return run.run_id, i

        results = await asyncio.gather(*(one(i) for i in range(20)))
    flush()
    seen_traces = set()
    for run_id, i in results:
        traj, _ = collector.wait_run(run_id)
        assert _agent_steps(traj) == [
            ("supervisor", ["transfer_to_researcher"], "researcher"),
            ("researcher", ["search"], None),
            ("researcher", [], None),
            ("supervisor", [], None),
        ], (i, json.dumps(_agent_steps(traj)))
        assert traj.steps[1].tool_calls[0].arguments == {"query": f"topic {i}"}
        assert traj.steps[1].tool_calls[0].result == f"results for topic {i}"
        assert traj.answer == f"final answer {i}"
        seen_traces.add(traj.trace_id)
    assert len(seen_traces) == 20


def test_twenty_parallel_runs_in_threads(lc, collector):
    """Sync invoke from a thread pool: each worker thread runs one graph (which itself uses a pool)."""
    from concurrent.futures import ThreadPoolExecutor

    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm)

        def one(i: int):
            with agenttrace.run("supervisor-threads", task=f"research #{i}") as run:
                out = graph.invoke({"messages": [HumanMessage(f"research #{i}")]})
                run.succeed(out["messages"][-1].content)
            return run.run_id, i

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(one, range(20)))
    flush()
    for run_id, i in results:
        traj, _ = collector.wait_run(run_id)
        assert [(s.agent, s.transfer_to) for s in traj.steps] == [
            ("supervisor", "researcher"), ("researcher", None), ("researcher", None), ("supervisor", None)], i
        assert traj.steps[1].tool_calls[0].result == f"results for topic {i}"
        assert traj.answer == f"final answer {i}"


def test_uninstall_restores_langgraph(collector):
    from langgraph.pregel import Pregel

    before = (Pregel.stream, Pregel.astream)
    agenttrace.instrument(endpoint=collector.endpoint, frameworks=["langchain"])
    assert Pregel.stream is not before[0] and Pregel.astream is not before[1]
    agenttrace.uninstrument()
    assert (Pregel.stream, Pregel.astream) == before
