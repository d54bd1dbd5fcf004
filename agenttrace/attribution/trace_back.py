"""Following a step's fault back to the earlier step it was inherited from.

The decisive error is the earliest step whose correction turns the failure into a success. When a step's
fault is only what an earlier step made it do, correcting the earlier step removes both, so blame belongs
there. A step *inherits* from an earlier one (:func:`causes`) when:

* it repeats a step that is itself a repeat: a loop started at its first repeat;
* it is its agent's next act, in the same turn, after that agent's own repeat: the give-up or wrong turn a
  loop ends in;
* one of its tool calls has an argument whose whole value the task does not give and an earlier step's
  message first said (a user's wrong detail, a planner's wrong item; :attr:`StepFlow.originates`). A word
  inside a query the caller composed is the caller's wording, and a value another agent only used in a tool
  call was never handed on, so neither links;
* one of its tool calls uses a value the task does not give, in place of a task value that an earlier
  agent's restatement of the task had already left out and no step gave it again, or that an earlier step
  had but the hand-overs that brought it the work left out (a lead's second delegation; a report handed back
  is no hand-over of work): :attr:`StepFlow.loses`;
* it is in the turn of an agent that was handed the work by an earlier step and calls a tool nothing asked
  for, having no other (:attr:`StepFlow.hands_off_request`): the hand-off chose the wrong agent;
* it is its agent's next act after that agent's call failed on an argument no input gave (a misspelt name, a
  made-up id: :meth:`StepFlow.caused_its_failure`), and goes on with a value of its own instead of calling
  again (:attr:`StepFlow.works_around`) or without a word about the failure (:attr:`StepFlow.ignored_error_at`):
  the corrected call would have left nothing to work around or to ignore;
* a number it answers with is worked out, correctly, of a number an earlier step made up: stated with no
  input or arithmetic on its inputs to give it (a misread result, an assumed value), or returned by a call
  with an argument no input gave (the price of another item, the count of a misspelt team:
  :attr:`StepFlow.built_on`): the arithmetic was right, the corrected step would have given it the right
  operand;
* a number it answers with is worked out of its inputs (arithmetic on them gives it), and the latest turn of
  another agent before it handed back without items it was handed (:attr:`StepFlow.left_out`) that no step
  has named since (:func:`answered_without`): the arithmetic was right on what it had, the corrected turn
  would have given it the missing operands.

A step that stops at a call the environment failed (its agent's next act names the failing tool, calls
nothing and states nothing of its own, and no step after it does: :attr:`StepFlow.stops_at`) inherits from the
failed call, and the run ends there: :func:`environment_end`. The verdict then names the environment at that
call, whichever step the distribution puts first: no agent's correction removes a service that is down, and no
earlier step's error, repaired or not, is what ended the run. Not so a stop after an error that says the call
can be made again (a timeout, a rate limit), on a call its agent had not made before: a retry would have got past
it, so the stop is its agent's error, and the failed call's fault goes forward to it (below).

One link goes forward. A call that failed through no argument of its caller's (a timeout, a service down) is
the environment's doing, and no correction of that step removes it; when the agent's next act goes on with a
value of its own instead of calling again (:attr:`StepFlow.works_around`), or gives up although the error said
the call could be made again (:attr:`StepFlow.gives_up_at`), that act is the correctable error, so the failed
call's fault is followed forward to it.

Which kind of error a run has is never asked: these links hold of the trajectory, whatever was planted or
happened. :func:`trace` moves each step's probability to the step its fault is followed to; the verdict
is then read off the traced distribution. :func:`link_claims` says, in checked claims, why a step was blamed
for a later one.
"""

from __future__ import annotations

import numpy as np

from agenttrace.attribution import claims as cl
from agenttrace.attribution.flow import StepFlow, action_text, mentions
from agenttrace.attribution.provenance import OffTaskArgument, lower_tokens
from agenttrace.models import Step


def causes(steps: list[Step], flows: list[StepFlow]) -> list[int]:
    """For each step, the step its fault is followed to (itself when none): the earliest earlier step of the
    links above, or else the later step that works around its failure or gives up at it."""
    agents = [s.agent for s in steps]
    out = list(range(len(flows)))

    def link(j: int, i: int) -> None:
        if i < j:
            out[j] = min(out[j], i)

    last_act: dict[str, int] = {}
    for j, f in enumerate(flows):
        if f.repeats is not None and flows[f.repeats].repeats is not None:
            link(j, f.repeats)
        previous = last_act.get(agents[j])
        if (f.repeats is None and f.acts and previous is not None and flows[previous].repeats is not None
                and previous in _turn(j, agents)):
            link(j, previous)
        if f.acts and not f.tool_output:
            last_act[agents[j]] = j
    for i, f in enumerate(flows):
        for a in f.originates:
            if _handed(a, steps[i]):
                link(a.call, i)
        for a in f.loses:
            link(a.call, i)
        if f.hands_off_request is not None:
            for j in _turn(f.hands_off_request.pos, agents):
                link(j, i)
        for failed in (f.works_around, f.ignored_error_at):
            if failed is not None and flows[failed].caused_its_failure():
                link(i, failed)
        if f.stops_at is not None:
            link(i, f.stops_at)
        if f.built_on is not None:
            link(i, f.built_on.pos)
        if (without := answered_without(i, steps, flows)) is not None:
            link(i, without[0])
    for j, f in enumerate(flows):
        for k in (f.works_around, f.gives_up_at):
            if k is not None and not flows[k].caused_its_failure() and out[k] == k and out[j] != k:
                out[k] = j
    return out


def answered_without(pos: int, steps: list[Step], flows: list[StepFlow]) -> tuple[int, str] | None:
    """When step ``pos`` answers with a number worked out of its inputs, and the latest earlier turn that
    handed back without items it was handed is another agent's, with none of those items named by any step
    since: that turn's last step and the number."""
    f = flows[pos]
    worked_out = [s for s in f.introduced_to_answer if s not in f.underived]
    if not worked_out:
        return None
    gap_at = next((h for h in reversed(range(pos)) if flows[h].left_out is not None), None)
    if gap_at is None or steps[gap_at].agent == steps[pos].agent:
        return None
    items = flows[gap_at].left_out.items
    if any(mentions(action_text(steps[k]), i) for k in range(gap_at + 1, pos + 1) for i in items):
        return None
    return gap_at, worked_out[0]


def _turn(pos: int, agents: list[str]) -> range:
    """The consecutive steps of step ``pos``'s agent around it."""
    start, end = pos, pos + 1
    while start > 0 and agents[start - 1] == agents[pos]:
        start -= 1
    while end < len(agents) and agents[end] == agents[pos]:
        end += 1
    return range(start, end)


def _handed(a: OffTaskArgument, origin: Step) -> bool:
    """Whether the off-task argument is a value its origin's message handed on: the whole value of the
    argument, and said in the message."""
    return a.token == a.value.strip() and a.token.lower() in lower_tokens(origin.content)


def _stopped_by(j: int, flows: list[StepFlow], cause: list[int]) -> int | None:
    """The failed call step ``j`` stops at (:attr:`StepFlow.stops_at`) when its fault is traced to that call."""
    at = flows[j].stops_at
    return at if at is not None and cause[j] == at else None


def environment_stop(pos: int, flows: list[StepFlow], cause: list[int]) -> int | None:
    """The later step that stops at step ``pos``'s failed call and is traced to it: the fault is then the
    environment's, at ``pos``, not an agent's."""
    return next((j for j in range(pos + 1, len(flows)) if _stopped_by(j, flows, cause) == pos), None)


def root(pos: int, cause: list[int]) -> int:
    """The step ``pos``'s fault is followed to, link by link (where links come round, the last step before
    they do)."""
    seen = {pos}
    while cause[pos] != pos and cause[pos] not in seen:
        pos = cause[pos]
        seen.add(pos)
    return pos


def trace(p: np.ndarray, cause: list[int]) -> np.ndarray:
    """The distribution ``p`` with each step's probability moved to the step its fault is followed to."""
    out = np.zeros_like(p)
    for j, pj in enumerate(p):
        out[root(j, cause)] += pj
    return out


def environment_end(flows: list[StepFlow], cause: list[int]) -> int | None:
    """The failed call the run ends at (:func:`environment_stop`: a step stops at it and is traced to it), when
    it ends at one; the earliest, should two agents each stop at their own."""
    return min((at for j in range(len(flows)) if (at := _stopped_by(j, flows, cause)) is not None), default=None)


def _failure(f: StepFlow) -> tuple[str, str]:
    """The tool of the step's failed call and the start of its error, as a claim quotes them."""
    tool, error = f.failed_tool
    return tool, " ".join(error.split())[:80]


def link_claims(pos: int, steps: list[Step], flows: list[StepFlow], cause: list[int]) -> list[cl.Claim]:
    """Why step ``pos`` carries the fault of another step traced to it, as claims (unchecked)."""
    later = [j for j in range(pos + 1, len(cause)) if cause[j] == pos]
    f = flows[pos]
    out: list[cl.Claim] = []
    # the forward links of causes: a failed call's fault passed on to the act that went on without it or gave up
    for k, claim in ((f.works_around, cl.GoesOnAfterFailure), (f.gives_up_at, cl.GivesUpAtRetryable)):
        if k is not None and cause[k] == pos:
            out.append(claim(pos, k, *_failure(flows[k])))
    if not later:
        return out
    if (j := environment_stop(pos, flows, cause)) is not None:
        out.append(cl.StopsAtFailure(pos, j, *_failure(f)))
    if f.repeats is not None:
        out.append(cl.Repeats(pos, f.repeats))
    if (j := next((j for j in later if pos in (flows[j].works_around, flows[j].ignored_error_at)), None)) is not None:
        out.append(cl.FailureGoneAround(pos, j, *_failure(f)))
    if built := [j for j in later if flows[j].built_on is not None and flows[j].built_on.pos == pos]:
        b = flows[built[0]].built_on
        out.append(cl.AnswerBuiltOn(pos, built[0], b.tool, b.operand, b.number))
    if f.left_out is not None:
        for j in later:
            if (without := answered_without(j, steps, flows)) is not None and without[0] == pos:
                out.append(cl.AnswerWithout(pos, f.left_out.handed_by, f.left_out.items[:3], j, without[1]))
                break
    for a in f.originates:
        if a.call in later and _handed(a, steps[pos]):
            out.append(cl.FirstToState(pos, a.token, a.call, a.tool, a.argument, a.value))
            break
    for a in f.loses:
        if a.call in later:
            out.append(cl.DropsTaskValue(pos, a.task_values[:3], a.call, a.tool, a.argument, a.value))
            break
    if (c := f.hands_off_request) is not None and c.pos in later:
        out.append(cl.HandsToOffRequest(pos, c.pos, c.tool, c.alternative, c.words, c.owner))
    return out
