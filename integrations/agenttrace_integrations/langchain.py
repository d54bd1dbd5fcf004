"""LangChain / LangGraph: a callback handler added to every callback manager, emitting GenAI spans.

Hooked through LangChain's own configure hook (``register_configure_hook``),
so every ``invoke``/``ainvoke``/``stream`` of any runnable - LangGraph graphs,
``create_react_agent``, ``langgraph-supervisor``, ``langgraph-swarm`` - reports
to one handler without the app passing ``callbacks=``.

Mapping:

* a LangGraph graph invocation that is not inside another run (``metadata["ls_integration"] == "langgraph"``)
  is an ``invoke_workflow {graph name}`` span around everything the graph runs;
* a LangGraph node run (``metadata["langgraph_node"] == run name``) that is not
  inside another agent is an ``invoke_agent {node}`` span - the node name is
  the agent's name (``create_react_agent(name=...)``, supervisor / swarm
  members, plain function nodes of a ``StateGraph``); a react agent's inner
  nodes (``agent``, ``tools``, hooks) are not agents of their own. A root graph
  compiled with a name of its own (not LangGraph's default) is an agent too;
* every chat-model / LLM call is a ``chat {model}`` span; every tool run an
  ``execute_tool {tool}`` span with the tool call id.
* the root graph's workflow span declares its team (``agenttrace.run.team``): each agent node with the
  tools of its ``ToolNode`` (a react agent's, a supervisor's hand-offs included), plain function nodes
  with none. The callbacks do not carry the graph, so ``Pregel.stream`` / ``astream`` (``invoke`` and
  ``ainvoke`` go through them) hold it in a context variable while their first step starts the run.

Parentage comes from LangChain's ``run_id``/``parent_run_id``, never from the
current context: LangGraph runs nodes on thread pools and asyncio tasks.
Exceptions LangGraph uses for control flow (``ParentCommand`` for handoffs,
``GraphInterrupt``) do not mark spans failed.
"""

from __future__ import annotations

import contextvars
from typing import Any
from uuid import UUID

from agenttrace import genai
from agenttrace.integration import DidNotEnable, Integration

#: The graph whose ``stream``/``astream`` is starting in this context: its root run declares the graph's team.
_starting_graph: contextvars.ContextVar[Any] = contextvars.ContextVar("agenttrace_langgraph_graph", default=None)

REACT_INTERNAL_NODES = genai.LANGGRAPH_INTERNAL_NODES
DEFAULT_GRAPH_NAMES = frozenset({"LangGraph", "RunnableSequence", "RunnableLambda", "RunnableParallel"})
_CONTROL_FLOW = frozenset({"GraphBubbleUp", "GraphInterrupt", "ParentCommand", "NodeInterrupt"})

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "AIMessageChunk": "assistant", "chat": "user"}


def _message(msg: Any) -> dict[str, Any]:
    """A LangChain message (or a plain dict/tuple/str) as an OpenAI-style dict."""
    if isinstance(msg, dict):
        return msg
    if isinstance(msg, str):
        return {"role": "user", "content": msg}
    if isinstance(msg, (tuple, list)) and len(msg) == 2:
        return {"role": _ROLES.get(msg[0], msg[0]), "content": msg[1]}
    role = _ROLES.get(getattr(msg, "type", ""), getattr(msg, "role", None) or "user")
    out: dict[str, Any] = {"role": role, "content": getattr(msg, "content", None) or ""}
    calls = getattr(msg, "tool_calls", None)
    if calls:
        out["tool_calls"] = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args")} for c in calls]
    if role == "tool":
        out["tool_call_id"] = getattr(msg, "tool_call_id", None)
    name = getattr(msg, "name", None)
    if name:
        out["name"] = name
    return out


def _last_message(value: Any, want_role: str | None = None) -> dict[str, Any] | None:
    """The last message of a LangGraph state / update (``{"messages": [...]}``), if any."""
    msgs = value.get("messages") if isinstance(value, dict) else None
    if msgs is None:
        update = getattr(value, "update", None)  # a Command
        msgs = update.get("messages") if isinstance(update, dict) else None
    if not isinstance(msgs, (list, tuple)) or not msgs:
        return None
    for msg in reversed(msgs):
        m = _message(msg)
        if want_role is None or m.get("role") == want_role:
            return m
    return None


def _is_control_flow(error: BaseException) -> bool:
    return any(cls.__name__ in _CONTROL_FLOW for cls in type(error).__mro__)


def _make_handler_class():
    from langchain_core.callbacks import BaseCallbackHandler

    class AgentTraceCallbackHandler(BaseCallbackHandler):
        """Turns LangChain callback events into GenAI spans, parented by LangChain run ids."""

        run_inline = True  # ordering matters: never deferred to an executor
        raise_error = False

        def __init__(self) -> None:
            super().__init__()
            self.table = genai.SpanTable()
            self._wrappers: set[UUID] = set()  # agent runs with agents nested inside (a team graph)

        # -- helpers ---------------------------------------------------------------
        def _register(self, run_id: UUID, parent_run_id: UUID | None, span, info) -> None:
            self.table.add(run_id, span, parent_run_id, info)
            if parent_run_id is None:
                self.table.set_root_context(run_id, genai.current_context())

        def _agent_of(self, parent_run_id: UUID | None) -> str | None:
            return self._enclosing_agent(parent_run_id)[1]

        def _enclosing_agent(self, parent_run_id: UUID | None) -> tuple[UUID | None, str | None]:
            for key, _, info in self.table.ancestors(parent_run_id):
                if isinstance(info, str):
                    return key, info
            return None, None

        def _parent(self, run_id: UUID, parent_run_id: UUID | None):
            if parent_run_id is None:
                return genai.current_context()
            return self.table.parent_of(parent_run_id)

        def _finish(self, run_id: UUID | tuple, error: BaseException | None = None) -> None:
            span, _ = self.table.pop(run_id)
            if span is not None:
                genai.end(span, None if error is None or _is_control_flow(error) else error)

        def _start_workflow(self, run_id: UUID, name: str, inputs: Any) -> tuple:
            """The ``invoke_workflow`` span of a root graph run, under its own key: the run's parent in the table."""
            key = ("workflow", run_id)
            last = _last_message(inputs)
            span = genai.start_workflow(name, parent=genai.current_context(), input=[last] if last else None,
                                        framework="langgraph")
            team = _team(_starting_graph.get())
            if len(team) > 1:
                genai.declare_team(span, team)
            self.table.add(key, span, None, None)
            return key

        def _finish_workflow(self, run_id: UUID, outputs: Any = None, error: BaseException | None = None) -> None:
            span, _ = self.table.get(("workflow", run_id))
            if span is not None and error is None:
                _record_output(span, outputs)
            self._finish(("workflow", run_id), error)

        # -- chains: agents ----------------------------------------------------------
        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None,
                           name=None, **kwargs) -> None:
            metadata = metadata or {}
            if name is None and serialized:
                name = serialized.get("name") or (serialized.get("id") or [None])[-1]
            workflow = None
            if parent_run_id is None and metadata.get("ls_integration") == "langgraph":
                workflow = self._start_workflow(run_id, name or "LangGraph", inputs)
            agent_name = None
            outer_key = None
            if not (tags and "langsmith:hidden" in tags) and name and not name.startswith("__"):
                is_node = metadata.get("langgraph_node") == name
                outer_key, outer = self._enclosing_agent(parent_run_id)
                # a node is an agent unless it is a react agent's inner node, or the subgraph run of the
                # very agent whose node it is (``researcher`` node -> ``researcher`` graph)
                if is_node and name != outer and name not in REACT_INTERNAL_NODES:
                    agent_name = name
                elif parent_run_id is None and "langgraph_node" not in metadata and name not in DEFAULT_GRAPH_NAMES \
                        and metadata.get("agenttrace.agent", True) and _looks_like_graph(serialized, kwargs):
                    agent_name = name
            parent_key = workflow or parent_run_id
            if agent_name is None:
                self._register(run_id, parent_key, None, None)
                return
            if outer_key is not None:
                self._wrappers.add(outer_key)
            last = _last_message(inputs)
            span = genai.start_agent(agent_name, parent=self._parent(run_id, parent_key),
                                     input=[last] if last else None, framework="langgraph")
            self._register(run_id, parent_key, span, agent_name)

        def on_chain_end(self, outputs, *, run_id, **kwargs) -> None:
            span, info = self.table.get(run_id)
            if run_id in self._wrappers:  # a team's output is its members' steps, not a step of its own
                self._wrappers.discard(run_id)
            elif span is not None and isinstance(info, str):
                _record_output(span, outputs)
            self._finish(run_id)
            self._finish_workflow(run_id, outputs)

        def on_chain_error(self, error, *, run_id, **kwargs) -> None:
            self._wrappers.discard(run_id)
            self._finish(run_id, error)
            self._finish_workflow(run_id, error=error)

        # -- model calls -------------------------------------------------------------
        def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, metadata=None,
                                invocation_params=None, **kwargs) -> None:
            flat = [_message(m) for batch in messages for m in batch]
            self._start_llm(run_id, parent_run_id, flat, metadata, invocation_params)

        def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, metadata=None,
                         invocation_params=None, **kwargs) -> None:
            self._start_llm(run_id, parent_run_id, list(prompts), metadata, invocation_params, "text_completion")

        def _start_llm(self, run_id, parent_run_id, messages, metadata, params, operation="chat") -> None:
            metadata = metadata or {}
            params = params or {}
            model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
            span = genai.start_chat(model, messages, parent=self._parent(run_id, parent_run_id),
                                    provider=metadata.get("ls_provider") or params.get("_type") or "langchain",
                                    agent=self._agent_of(parent_run_id), operation=operation)
            self._register(run_id, parent_run_id, span, None)

        def on_llm_end(self, response, *, run_id, **kwargs) -> None:
            span, _ = self.table.get(run_id)
            if span is not None:
                _record_llm_result(span, response)
            self._finish(run_id)

        def on_llm_error(self, error, *, run_id, **kwargs) -> None:
            self._finish(run_id, error)

        # -- tools -----------------------------------------------------------------------
        def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, inputs=None,
                          tool_call_id=None, name=None, **kwargs) -> None:
            serialized = serialized or {}
            tool = name or serialized.get("name") or "tool"
            span = genai.start_tool(tool, inputs if inputs is not None else input_str,
                                    parent=self._parent(run_id, parent_run_id), call_id=tool_call_id,
                                    description=serialized.get("description"))
            self._register(run_id, parent_run_id, span, None)

        def on_tool_end(self, output, *, run_id, **kwargs) -> None:
            span, _ = self.table.get(run_id)
            if span is not None:
                genai.tool_result(span, _tool_output(output))
                status = getattr(output, "status", None)
                if status == "error":  # a tool that returned its own error message
                    span.set_attribute("error.type", "ToolError")
            self._finish(run_id)

        def on_tool_error(self, error, *, run_id, **kwargs) -> None:
            self._finish(run_id, error)

        # -- retrievers: spans only to keep parentage -------------------------------------
        def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs) -> None:
            self._register(run_id, parent_run_id, None, None)

        def on_retriever_end(self, documents, *, run_id, **kwargs) -> None:
            self._finish(run_id)

        def on_retriever_error(self, error, *, run_id, **kwargs) -> None:
            self._finish(run_id)

    return AgentTraceCallbackHandler


def _looks_like_graph(serialized: Any, kwargs: dict[str, Any]) -> bool:
    """A named root run is an agent only when it is a LangGraph graph (not a bare chain)."""
    ident = (serialized or {}).get("id") or ()
    if ident:
        return any("langgraph" in str(part) or "Pregel" in str(part) for part in ident)
    return True  # LangGraph graphs report no ``serialized``


def _team(graph: Any) -> list[tuple[str, None, list]]:
    """The agent nodes of a compiled graph, each with the tools of the ``ToolNode`` it holds (none for a plain
    function node); a react agent's inner nodes and LangGraph's own (``__start__``) are no agents."""
    return [(name, None, _tools(getattr(node, "bound", None)))
            for name, node in (getattr(graph, "nodes", None) or {}).items()
            if not name.startswith("__") and name not in REACT_INTERNAL_NODES]


def _tools(runnable: Any) -> list:
    """The tools of a ``ToolNode``, or of the ``ToolNode`` nodes of a subgraph (a react agent), also of one that
    a node's function closes over (``langgraph-supervisor`` calls each member from a function of its own)."""
    by_name = getattr(runnable, "tools_by_name", None)
    if isinstance(by_name, dict):
        return list(by_name.values())
    nodes = getattr(runnable, "nodes", None) or next(
        (g.nodes for g in _closed_over(getattr(runnable, "func", None)) if isinstance(getattr(g, "nodes", None), dict)),
        {})
    return [t for node in nodes.values()
            for t in (getattr(getattr(node, "bound", None), "tools_by_name", None) or {}).values()]


def _closed_over(func: Any):
    for cell in getattr(func, "__closure__", None) or ():
        try:
            yield cell.cell_contents
        except ValueError:  # a cell not filled yet
            continue


def _wrap_stream(original):
    def stream(self, *args, **kwargs):
        gen = original(self, *args, **kwargs)
        token = _starting_graph.set(self)
        try:
            first = next(gen)  # the first step starts the run (on_chain_start) in this context
        except StopIteration:
            return
        finally:
            _starting_graph.reset(token)
        yield first
        yield from gen

    return stream


def _wrap_astream(original):
    async def astream(self, *args, **kwargs):
        gen = original(self, *args, **kwargs)
        token = _starting_graph.set(self)
        try:
            first = await gen.__anext__()
        except StopAsyncIteration:
            return
        finally:
            _starting_graph.reset(token)
        try:
            yield first
            async for item in gen:
                yield item
        finally:
            await gen.aclose()

    return astream


def _record_output(span, outputs: Any) -> None:
    """A graph's or node's result on its span: the last message of its state, else the value as text."""
    last = _last_message(outputs, "assistant") or _last_message(outputs)
    if last is not None:
        genai.agent_output(span, [last])
    elif outputs is not None and not isinstance(outputs, dict):
        genai.agent_output(span, str(outputs))


def _tool_output(output: Any) -> Any:
    content = getattr(output, "content", None)
    if content is not None:
        return content
    update = getattr(output, "update", None)  # a Command, e.g. a handoff
    if update is not None:
        msg = _last_message(update, "tool")
        goto = getattr(output, "goto", None)
        return msg.get("content") if msg else f"Command(goto={goto!r})"
    return output


def _record_llm_result(span, response) -> None:
    gens = response.generations[0] if response.generations else []
    outputs = []
    finish = None
    in_tok = out_tok = model = None
    for gen in gens:
        msg = getattr(gen, "message", None)
        outputs.append(_message(msg) if msg is not None else {"role": "assistant", "content": gen.text})
        info = getattr(gen, "generation_info", None) or {}
        finish = finish or info.get("finish_reason")
        if msg is not None:
            usage = getattr(msg, "usage_metadata", None) or {}
            in_tok = usage.get("input_tokens", in_tok)
            out_tok = usage.get("output_tokens", out_tok)
            meta = getattr(msg, "response_metadata", None) or {}
            model = meta.get("model_name") or meta.get("model") or model
            finish = finish or meta.get("finish_reason")
    llm_output = response.llm_output or {}
    model = model or llm_output.get("model_name")
    genai.chat_response(span, outputs, model=model, input_tokens=in_tok, output_tokens=out_tok,
                        finish_reason=finish)


class LangChainIntegration(Integration):
    name = "langchain"
    requires = ("langchain-core>=0.3",)

    def __init__(self) -> None:
        self.handler = None
        self._var: contextvars.ContextVar | None = None
        self._patches = genai.Patches()

    def install(self, tracer_provider) -> None:
        try:
            from langchain_core.tracers.context import register_configure_hook
        except ImportError as exc:  # pragma: no cover - guarded by requires
            raise DidNotEnable(f"langchain: {exc}") from exc
        self.handler = _make_handler_class()()
        try:
            from langgraph.pregel import Pregel
        except ImportError:  # LangChain without LangGraph: no graphs, no teams
            pass
        else:
            self._patches.wrap(Pregel, "stream", _wrap_stream)
            self._patches.wrap(Pregel, "astream", _wrap_astream)
        # A ContextVar whose *default* is the handler: seen from every thread and task, set or not.
        self._var = contextvars.ContextVar("agenttrace_langchain_handler", default=self.handler)
        register_configure_hook(self._var, True)

    def uninstall(self) -> None:
        self._patches.restore()
        if self._var is None:
            return
        from langchain_core.tracers import context as lc_context

        hooks = getattr(lc_context, "_configure_hooks", [])
        hooks[:] = [h for h in hooks if h[0] is not self._var]
        for span in self.handler.table.clear():
            span.end()
        self._var = None
        self.handler = None
