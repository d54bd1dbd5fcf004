"""Rebuilding a run's step trajectory from its spans, whatever convention emitted them.

A step is one agent turn. Every LLM call is a step of the agent it runs under;
an agent span with no LLM call of its own (a scripted agent, a manual
``agent_step``) is one step with the agent's output. A ``plan`` span that
records its plan itself (no LLM call under it) is a step of its agent, followed
by the agent's own output when it has one. Tool calls are attached to
the step that asked for them (matched by call id, else by name), with their
results and errors. A call executed on a later turn (AG2 runs the functions a
reply asks for on a turn of its own, the caller's or a user proxy's) is attached
to the step that asked for it, matched by call id, and a turn that only executed
such calls is no step: a tool's output is never an agent's content. Handoff-style
tool calls and transfer attributes name the target agent. A handoff span
(``agenttrace.transfer.target``, the OpenAI Agents instrumentor's
``agent_handoff``) belongs to the agent turn it hangs under; when
one step hands off more than once (a coordinator assigning several subtasks in
one turn), ``transfer_to`` names the first target and every handoff is also a
``transfer_to_{target}`` tool call on the step, as frameworks with handoff tools
record it. Steps are ordered by start time, so parallel branches interleave as
they happened. Steps that start at the same time (a sender with millisecond start
times: turns in the same millisecond) keep the order of their spans in the tree:
a parent's before its children's, siblings in the order they were received (see
``build_tree``), which is the order they ran.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from agenttrace import semconv as sc
from agenttrace.logs import get_logger
from agenttrace.models import Outcome, Step, Teammate, ToolCall, Trajectory
from agenttrace.team import decode as decode_team
from agenttrace_collector.conventions import (
    A2A_METHOD,
    MCP_METHOD,
    Kind,
    Normalized,
    handoff_target,
    last_user_text,
    message_text,
    message_tool_calls,
    normalize,
)
from agenttrace_collector.spanview import SpanView, build_tree

log = get_logger("agenttrace.collector.assemble")


@dataclass
class _Draft:
    time: int  # ns
    rank: int  # the tree position (pre-order) of the span the step's time comes from: the tie-break on time
    order: int  # emission order: the last tie-break (a turn's own step after the plans it recorded)
    step: Step
    end: int  # ns: the end of the span the step comes from
    plan: bool = False  # a plan the agent recorded itself (a plan span with no model call under it)


@dataclass
class _AgentScope:
    name: str
    span: SpanView
    steps: list[_Draft] = field(default_factory=list)
    loose_tools: list[ToolCall] = field(default_factory=list)
    transfer_to: str | None = None  # the agent span's own transfer attribute, or a loose delegating tool's target
    handoffs: list[SpanView] = field(default_factory=list)  # handoff spans under this turn, in start order
    answered: list[ToolCall] = field(default_factory=list)  # calls an earlier turn asked for, executed in this one


class _Builder:
    def __init__(self, spans: list[SpanView]) -> None:
        self.roots = build_tree(spans)
        self.rank = {s.span_id: i for i, s in enumerate(s for root in self.roots for s in root.walk())}
        self.norm: dict[str, Normalized] = {s.span_id: normalize(s) for s in spans}
        self._fold_server_sides(spans)
        self.drafts: list[_Draft] = []
        self._order = itertools.count()

    def _fold_server_sides(self, spans: list[SpanView]) -> None:
        """An MCP or A2A server's span under its client's span of the same call (with only containers, such as
        HTTP spans, between) is one call seen twice: the client's span stands for it, the server's is a container."""
        parent = {child.span_id: span for span in spans for child in span.children}
        for span in spans:
            key = next((k for k in (MCP_METHOD, A2A_METHOD) if span.attrs.get(k)), None)
            if key is None:
                continue
            up = parent.get(span.span_id)
            while up is not None and self.norm[up.span_id].kind is Kind.OTHER and not up.attrs.get(key):
                up = parent.get(up.span_id)
            if up is not None and up.attrs.get(key) == span.attrs.get(key):
                self.norm[span.span_id] = Normalized(Kind.OTHER)

    def build(self) -> list[Step]:
        for root in self.roots:
            self._walk(root, None)
        self.drafts.sort(key=lambda d: (d.time, d.rank, d.order))
        steps = []
        for i, d in enumerate(self.drafts):
            d.step.index = i
            steps.append(d.step)
        return steps

    def _emit(self, span: SpanView, step: Step, scope: _AgentScope | None, *, after: _Draft | None = None) -> _Draft:
        """Adds ``span``'s step, timed by the span's start, or by ``after``'s end (a turn's output after its plans)."""
        time, rank = (after.end, after.rank) if after else (span.start_ns, self.rank[span.span_id])
        draft = _Draft(time, rank, next(self._order), step, span.end_ns)
        self.drafts.append(draft)
        if scope is not None:
            scope.steps.append(draft)
        return draft

    def _walk(self, span: SpanView, scope: _AgentScope | None) -> None:
        n = self.norm[span.span_id]
        if n.kind is Kind.AGENT:
            self._agent(span, n)
            return
        if n.kind is Kind.PLAN:
            self._plan(span, n, scope)
            return
        if n.kind is Kind.LLM:
            self._llm(span, n, scope)
        elif n.kind is Kind.TOOL:
            self._tool(span, n, scope)
        elif n.kind is Kind.HANDOFF and scope is not None:
            n.transfer_to = n.transfer_to or self._delegate(span)  # an A2A call names its agent, or runs it
            if n.transfer_to:
                scope.handoffs.append(span)
        for child in span.children:
            self._walk(child, scope)

    def _agent(self, span: SpanView, n: Normalized) -> None:
        scope = _AgentScope(name=n.agent or span.name, span=span, transfer_to=n.transfer_to)
        before = len(self.drafts)
        for child in span.children:
            self._walk(child, scope)
        nested = self.drafts[before:]
        # a tool's response in the turn's output (AG2's function-execution reply) is not the agent's own words
        own = message_text([m for m in n.output_messages if m.get("role") not in ("tool", "function")]) \
            or n.output_text or ""
        if not scope.steps and nested and not scope.loose_tools and (
                not own or any(d.step.agent == scope.name for d in nested)):
            return  # a wrapper around other agents' steps (a workflow / team span, or the same agent's node): no step
        if not scope.steps and scope.answered and not (
                own or scope.loose_tools or scope.transfer_to or scope.handoffs or span.error):
            return  # it only executed calls an earlier turn asked for: their results are on that turn's step
        if not scope.steps or (own and all(d.plan for d in scope.steps)):
            # the turn's own output: its only step, or the step after the plans it recorded
            plans = scope.steps[-1] if scope.steps else None
            step = Step(
                index=0, agent=scope.name, content=own,
                input=last_user_text(n.input_messages) or n.input_text, error=span.error,
                start_time=plans.step.end_time if plans else span.start, end_time=span.end, span_id=span.span_id,
            )
            self._emit(span, step, scope, after=plans)
        last = scope.steps[-1].step
        last.tool_calls.extend(scope.loose_tools)
        self._handoffs(last, scope)

    def _plan(self, span: SpanView, n: Normalized, scope: _AgentScope | None) -> None:
        """A plan span: the model call under it is the agent's step; without one, the plan it carries is."""
        before = len(self.drafts)
        for child in span.children:
            self._walk(child, scope)
        content = message_text(n.output_messages)
        if len(self.drafts) > before or not content:
            return
        step = Step(
            index=0, agent=scope.name if scope else (n.agent or span.service or "planner"), content=content,
            input=last_user_text(n.input_messages), error=span.error,
            start_time=span.start, end_time=span.end, span_id=span.span_id,
        )
        self._emit(span, step, scope).plan = True

    def _handoffs(self, step: Step, scope: _AgentScope) -> None:
        """The agent's explicit handoffs (attribute, handoff spans) onto its last step.

        An explicit handoff spells the target as the framework names it; a ``transfer_to_x``
        tool name only gives its normalised form, so a matching ``transfer_to`` is re-spelled.
        A handoff span no handoff-style tool call on the step stands for becomes a
        ``transfer_to_{target}`` tool call when the step hands off more than once, so that
        every target is on the step (``transfer_to`` holds one).
        """
        explicit = [(scope.transfer_to, None)] if scope.transfer_to else []
        explicit += [(self.norm[h.span_id].transfer_to, h) for h in scope.handoffs]
        if not explicit:
            return
        shown = [t for c in step.tool_calls if (t := handoff_target(c.name, c.arguments))]
        unshown: list[tuple[str, SpanView]] = []
        for target, span in explicit:
            match = next((i for i, t in enumerate(shown) if _same_agent(t, target)), None)
            if match is not None:
                shown.pop(match)
            elif span is not None:
                unshown.append((target, span))
        first = explicit[0][0]
        if not step.transfer_to:
            step.transfer_to = first
        else:
            step.transfer_to = next((t for t, _ in explicit if _same_agent(t, step.transfer_to)), step.transfer_to)
        handoff_calls = sum(1 for c in step.tool_calls if handoff_target(c.name, c.arguments))
        if handoff_calls + len(unshown) > 1:
            step.tool_calls.extend(ToolCall(name=f"transfer_to_{target}", error=span.error)
                                   for target, span in unshown)

    def _llm(self, span: SpanView, n: Normalized, scope: _AgentScope | None) -> None:
        calls = [ToolCall(id=c.get("id"), name=c.get("name") or "?", arguments=c.get("arguments"))
                 for c in message_tool_calls(n.output_messages)]
        agent = scope.name if scope else (n.agent or span.service or "assistant")
        step = Step(
            index=0, agent=agent, content=message_text(n.output_messages) or n.output_text or "",
            input=last_user_text(n.input_messages) or n.input_text, tool_calls=calls, error=span.error,
            start_time=span.start, end_time=span.end, span_id=span.span_id,
        )
        step.transfer_to = next((t for c in calls if (t := handoff_target(c.name, c.arguments))), None)
        self._emit(span, step, scope)

    def _tool(self, span: SpanView, n: Normalized, scope: _AgentScope | None) -> None:
        call = self._find_call(scope, n)
        requester = None
        if call is None and (requester := self._requested_earlier(n)) is not None:
            call = next(c for c in requester.tool_calls if c.id == n.tool_call_id and c.result is None
                        and c.error is None)
            if scope is not None:
                scope.answered.append(call)
        if call is None:
            call = ToolCall(id=n.tool_call_id, name=n.tool_name or span.name, arguments=n.tool_arguments)
            if scope is not None and scope.steps:  # an unrequested call (code-acting agents): the step running now
                scope.steps[-1].step.tool_calls.append(call)
            elif scope is not None:
                scope.loose_tools.append(call)
            else:
                step = Step(index=0, agent=span.service or "tool", role="tool", tool_calls=[call],
                            start_time=span.start, end_time=span.end, span_id=span.span_id)
                self._emit(span, step, None)
        call.result = n.tool_result
        call.error = span.error
        if call.arguments is None:
            call.arguments = n.tool_arguments
        target = n.transfer_to or handoff_target(call.name, call.arguments) or self._delegate(span)
        if target and requester is not None:
            requester.transfer_to = requester.transfer_to or target
        elif target and scope is not None:
            owner = next((d.step for d in reversed(scope.steps) if call in d.step.tool_calls), None)
            if owner is not None and not owner.transfer_to:
                owner.transfer_to = target
            elif owner is None:
                scope.transfer_to = scope.transfer_to or target

    def _delegate(self, span: SpanView) -> str | None:
        """The agent a tool call runs inside it (an agent used as a tool: a delegation), if any."""
        todo = list(span.children)
        while todo:
            child = todo.pop(0)
            n = self.norm[child.span_id]
            if n.kind is Kind.AGENT:
                return n.agent or child.name
            if n.kind is Kind.OTHER:
                todo.extend(child.children)
        return None

    def _requested_earlier(self, n: Normalized) -> Step | None:
        """The latest step, of any turn, with an unanswered call of this execution's call id."""
        if not n.tool_call_id:
            return None
        for draft in reversed(self.drafts):
            if any(c.id == n.tool_call_id and c.result is None and c.error is None for c in draft.step.tool_calls):
                return draft.step
        return None

    @staticmethod
    def _find_call(scope: _AgentScope | None, n: Normalized) -> ToolCall | None:
        if scope is None:
            return None
        pending = [c for d in reversed(scope.steps) for c in d.step.tool_calls if c.result is None and c.error is None]
        if n.tool_call_id:
            for c in pending:
                if c.id == n.tool_call_id:
                    return c
        for c in reversed(pending):  # earliest unanswered call of that name
            if c.name == n.tool_name:
                return c
        return None


def _same_agent(a: str, b: str) -> bool:
    def norm(name: str) -> str:
        return "".join(ch if ch.isalnum() else "_" for ch in name.strip().lower())
    return norm(a) == norm(b)


def find_run_span(spans: list[SpanView]) -> SpanView | None:
    runs = [s for s in spans if s.attrs.get(sc.SPAN_KIND) == "run"]
    if runs:
        return min(runs, key=lambda s: s.start)
    roots = [s for s in spans if not s.parent_id] or spans
    return min(roots, key=lambda s: s.start) if roots else None


def _team(spans: list[SpanView], run_span: SpanView | None) -> list[Teammate]:
    """The team the run declared: on the run's span, or else the first a framework's integration recorded;
    one that is not readable is left out (the run still assembles) and logged."""
    declared = run_span if run_span is not None and sc.RUN_TEAM in run_span.attrs else min(
        (s for s in spans if sc.RUN_TEAM in s.attrs), key=lambda s: s.start, default=None)
    if declared is None:
        return []
    try:
        return decode_team(declared.attrs[sc.RUN_TEAM])
    except ValueError as exc:
        log.warning("assemble.team_unreadable", trace_id=declared.trace_id, span_id=declared.span_id, error=str(exc))
        return []


def assemble(spans: list[SpanView]) -> Trajectory:
    """The trajectory of one trace's spans; outcome fields are left to failure detection."""
    run_span = find_run_span(spans)
    steps = _Builder(spans).build()
    a = run_span.attrs if run_span else {}
    root_norm = normalize(run_span) if run_span else Normalized(Kind.OTHER)
    task = a.get(sc.RUN_TASK) or root_norm.input_text or next((s.input for s in steps if s.input), None)
    answer = a.get(sc.RUN_ANSWER) or root_norm.output_text
    outcome = a.get(sc.RUN_OUTCOME)
    return Trajectory(
        run_id=a.get(sc.RUN_ID) or (run_span.trace_id if run_span else "unknown"),
        name=a.get(sc.RUN_NAME) or (run_span.name if run_span else None),
        service=run_span.service if run_span else None,
        trace_id=run_span.trace_id if run_span else None,
        task=task,
        expected=a.get(sc.RUN_EXPECTED),
        answer=answer,
        outcome=Outcome(outcome) if outcome in Outcome._value2member_map_ else Outcome.UNKNOWN,
        failure_reason=a.get(sc.RUN_FAILURE_REASON),
        steps=steps,
        team=_team(spans, run_span),
        start_time=min((s.start for s in spans), default=None),
        end_time=max((s.end for s in spans), default=None),
    )
