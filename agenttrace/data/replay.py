"""Counterfactual replay: re-run a failed multi-agent run with one step corrected, to find its decisive error.

The contract
------------
A *replayable* run function takes the model it must use as the keyword argument ``llm`` and makes
**every** model call through it::

    @replayable(live_llm, success=lambda answer: answer == "127")
    def team(task, *, llm):
        plan = llm([{"role": "system", "content": "You are Planner."}, {"role": "user", "content": task}],
                   agent="Planner")
        ...
        return answer

* ``llm(messages, agent=None) -> str`` takes OpenAI-style messages and returns the assistant text. The same
  object is also an OpenAI-compatible client shim: ``llm.chat.completions.create(model=..., messages=...)``
  returns an object with ``.choices[0].message.content``, so code written against the OpenAI SDK can take it
  in place of its client.
* Each model call is **one step**; call ``i`` of a run is step ``i`` of its trajectory. A run traced with
  agenttrace satisfies this when every ``agenttrace.agent_step`` makes one model call and records the
  model's text as the step's output (``step.output(response)``); then a Trajectory from the collector can be
  replayed directly (:meth:`Recording.from_trajectory`).
* Apart from the model, the run function is deterministic (tools included) or its randomness is seeded, so
  that serving the same responses reproduces the same run.

In replay at step ``t`` the responses recorded for calls ``0 .. t-1`` are served back while the inputs are
the same as recorded (a call whose input differs - possible only if the run is not deterministic - goes
live and is marked ``diverged``); call ``t`` gets the corrected action (a replacement text, or a
:class:`Hint` that is added to the messages of a live call); every later call runs live.

:func:`find_decisive_step` tries ``t = 0, 1, ...`` and returns the :class:`~agenttrace.models.Label` of the
earliest step whose correction turns the failure into a success - the definition of the decisive error
Who&When and AgenTracer use. Corrections come from a *corrector* ``(trajectory, t) -> str | Hint | None``:
a user oracle, :func:`attributor_corrector` (any :class:`~agenttrace.attribution.Attributor`) or
:func:`model_corrector` (an OpenAI-compatible model over httpx).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from agenttrace.models import Label, Outcome, Step, Trajectory

Messages = list[dict[str, Any]]
LiveLLM = Callable[[Messages], str]


@dataclass(frozen=True)
class Hint:
    """A correction as feedback: call ``t`` runs live with this text added as a last user message."""

    text: str


Correction = str | Hint
Corrector = Callable[[Trajectory, int], Correction | None]


@dataclass
class Call:
    index: int
    agent: str | None
    messages: Messages | None
    response: str
    source: str = "live"  # live | recorded | corrected | hinted
    diverged: bool = False


@dataclass
class Recording:
    """One run as its model calls, its result and whether it succeeded."""

    calls: list[Call] = field(default_factory=list)
    result: Any = None
    success: bool | None = None
    error: str | None = None

    def to_trajectory(self, run_id: str = "replay", task: str | None = None) -> Trajectory:
        steps = [Step(index=c.index, agent=c.agent or f"agent{c.index}", content=c.response,
                      input=_last_user(c.messages)) for c in self.calls]
        outcome = Outcome.UNKNOWN if self.success is None else (Outcome.SUCCESS if self.success else Outcome.FAILURE)
        return Trajectory(run_id=run_id, task=task, steps=steps, outcome=outcome,
                          answer=None if self.result is None else str(self.result), failure_reason=self.error)

    @classmethod
    def from_trajectory(cls, trajectory: Trajectory) -> Recording:
        """A recording of a traced run: step ``i``'s content is the response to call ``i``, inputs unchecked."""
        calls = [Call(index=i, agent=s.agent, messages=None, response=s.content, source="recorded")
                 for i, s in enumerate(trajectory.steps)]
        success = None if trajectory.outcome is Outcome.UNKNOWN else trajectory.outcome is Outcome.SUCCESS
        return cls(calls=calls, result=trajectory.answer, success=success)


def _last_user(messages: Messages | None) -> str | None:
    for m in reversed(messages or []):
        if m.get("role") == "user":
            return str(m.get("content"))
    return None


def _same(a: Messages | None, b: Messages | None) -> bool:
    if a is None or b is None:
        return True  # nothing recorded to compare with: serve by position
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


class ReplayLLM:
    """The ``llm`` a replayable run receives: records live calls, serves recorded ones, applies the correction."""

    def __init__(self, live: LiveLLM, recorded: Sequence[Call] = (), t: int | None = None,
                 correction: Correction | None = None, model: str = "replay") -> None:
        self.live = live
        self.recorded = list(recorded)
        self.t = t
        self.correction = correction
        self.calls: list[Call] = []
        self.live_calls = 0
        self.model = model
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def __call__(self, messages: Messages, agent: str | None = None) -> str:
        i = len(self.calls)
        messages = [dict(m) for m in messages]
        if agent is None:
            agent = next((m.get("name") for m in messages if m.get("name")), None)
        if self.t is not None and i == self.t and self.correction is not None:
            if isinstance(self.correction, Hint):
                response, source = self._live(messages + [{"role": "user", "content": self.correction.text}]), "hinted"
            else:
                response, source = self.correction, "corrected"
            call = Call(i, agent, messages, response, source)
        elif self.t is not None and i < self.t and i < len(self.recorded):
            rec = self.recorded[i]
            if _same(rec.messages, messages):
                call = Call(i, agent or rec.agent, messages, rec.response, "recorded")
            else:
                call = Call(i, agent, messages, self._live(messages), "live", diverged=True)
        else:
            call = Call(i, agent, messages, self._live(messages), "live")
        self.calls.append(call)
        return call.response

    def _live(self, messages: Messages) -> str:
        self.live_calls += 1
        return self.live(messages)

    def _create(self, *, messages: Messages, model: str | None = None, **_: Any) -> Any:
        text = self(messages)
        message = SimpleNamespace(role="assistant", content=text, tool_calls=None)
        return SimpleNamespace(model=model or self.model, choices=[SimpleNamespace(index=0, message=message,
                                                                                   finish_reason="stop")])


def _default_success(result: Any) -> bool:
    outcome = getattr(result, "outcome", None)
    if isinstance(outcome, Outcome):
        return outcome is Outcome.SUCCESS
    return bool(result)


class Replayable:
    """A run function under the replay contract (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], llm: LiveLLM, *, success: Callable[[Any], bool] | None = None) -> None:
        self.fn = fn
        self.llm = llm
        self.success = success or _default_success
        functools.update_wrapper(self, fn)

    def _run(self, replay_llm: ReplayLLM, args: tuple, kwargs: dict) -> Recording:
        try:
            result = self.fn(*args, llm=replay_llm, **kwargs)
        except Exception as exc:  # a crash of the run is a failed outcome, not an error of the replay
            return Recording(calls=replay_llm.calls, result=None, success=False, error=f"{type(exc).__name__}: {exc}")
        return Recording(calls=replay_llm.calls, result=result, success=bool(self.success(result)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A plain live run; returns what the run function returns."""
        return self.fn(*args, llm=ReplayLLM(self.llm), **kwargs)

    def record(self, *args: Any, **kwargs: Any) -> Recording:
        """A live run, recorded call by call."""
        return self._run(ReplayLLM(self.llm), args, kwargs)

    def replay(self, recorded: Recording | Trajectory, t: int, correction: Correction,
               *args: Any, **kwargs: Any) -> Recording:
        """Recorded calls before ``t`` served back, ``correction`` at ``t``, live after."""
        if isinstance(recorded, Trajectory):
            recorded = Recording.from_trajectory(recorded)
        return self._run(ReplayLLM(self.llm, recorded.calls, t, correction), args, kwargs)


def replayable(llm: LiveLLM, *, success: Callable[[Any], bool] | None = None) -> Callable[[Callable], Replayable]:
    """Decorator form of :class:`Replayable`."""
    return lambda fn: Replayable(fn, llm, success=success)


@dataclass
class Trial:
    step: int
    correction: Correction
    outcome: Recording


@dataclass
class ReplaySearch:
    label: Label | None
    trials: list[Trial]


def search_decisive_step(run: Replayable, failed: Recording | Trajectory, corrector: Corrector, *args: Any,
                         steps: Sequence[int] | None = None, **kwargs: Any) -> ReplaySearch:
    """Every trial of :func:`find_decisive_step`, and its label."""
    trajectory = failed if isinstance(failed, Trajectory) else failed.to_trajectory()
    recording = failed if isinstance(failed, Recording) else Recording.from_trajectory(failed)
    trials: list[Trial] = []
    for t in (steps if steps is not None else range(len(trajectory.steps))):
        correction = corrector(trajectory, t)
        if correction is None:
            continue
        outcome = run.replay(recording, t, correction, *args, **kwargs)
        trials.append(Trial(t, correction, outcome))
        if outcome.success:
            how = "replacing its output" if isinstance(correction, str) else "re-running it with a hint"
            return ReplaySearch(Label(agent=trajectory.steps[t].agent, step=trajectory.steps[t].index,
                                      reason=f"counterfactual replay: {how} turns the failure into a success; "
                                             f"no earlier step's correction did"), trials)
    return ReplaySearch(None, trials)


def find_decisive_step(run: Replayable, failed: Recording | Trajectory, corrector: Corrector, *args: Any,
                       steps: Sequence[int] | None = None, **kwargs: Any) -> Label | None:
    """The earliest step whose correction makes the run succeed, as a Label; None if no correction does.

    ``failed`` is the failed run (a :class:`Recording`, or its Trajectory from the collector); ``args`` and
    ``kwargs`` are the run function's own arguments (the task), passed again on every replay.
    """
    return search_decisive_step(run, failed, corrector, *args, steps=steps, **kwargs).label


# ---- correctors ---------------------------------------------------------------------------------
def oracle_corrector(fn: Callable[[Trajectory, int], Correction | None]) -> Corrector:
    """A user oracle ``(trajectory, t) -> corrected content`` (identity; for symmetry and documentation)."""
    return fn


GENERIC_HINT = "Your previous answer to this may contain an error. Re-check every input and your result."


def attributor_corrector(attributor: Any, *, generic: str | None = GENERIC_HINT) -> Corrector:
    """Corrections from any Attributor: at its blamed step a :class:`Hint` with its reason; elsewhere
    ``generic`` (or no correction when ``generic`` is None). The verdict is computed once per trajectory."""
    cache: dict[str, Any] = {}

    def correct(trajectory: Trajectory, t: int) -> Correction | None:
        key = trajectory.run_id
        if key not in cache:
            cache[key] = attributor.attribute(trajectory)
        verdict = cache[key]
        if verdict.is_decided and verdict.step == t:
            return Hint(f"A reviewer found the decisive error of this run in your answer here: {verdict.reason} "
                        f"Correct it.")
        return Hint(generic) if generic else None

    return correct


CORRECT_SYSTEM = ("You correct one step of a failed multi-agent run. You are shown the task, the steps up to "
                  "and including the step to correct. Reply with the corrected output of that step only, in the "
                  "same form the agent would write it, nothing else.")


def model_corrector(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
                    max_tokens: int = 1024) -> Corrector:
    """Corrections written by an OpenAI-compatible model (``POST {base_url}/chat/completions`` over httpx)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def correct(trajectory: Trajectory, t: int) -> Correction | None:
        shown = "\n\n".join(f"Step {s.index} - {s.agent}:\n{s.render()}" for s in trajectory.steps[: t + 1])
        user = (f"Task:\n{trajectory.task or '(not recorded)'}\n\n{shown}\n\n"
                f"Write the corrected output of step {trajectory.steps[t].index} ({trajectory.steps[t].agent}).")
        resp = httpx.post(f"{base_url.rstrip('/')}/chat/completions", headers=headers, timeout=timeout,
                          json={"model": model, "max_tokens": max_tokens, "temperature": 0,
                                "messages": [{"role": "system", "content": CORRECT_SYSTEM},
                                             {"role": "user", "content": user}]})
        resp.raise_for_status()
        text = resp.json()["choices"][0]["message"].get("content")
        return text.strip() if text else None

    return correct


def openai_llm(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
               **params: Any) -> LiveLLM:
    """A live ``llm`` over any OpenAI-compatible server (httpx, no SDK needed)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(timeout=timeout, headers=headers)

    def call(messages: Messages) -> str:
        resp = client.post(f"{base_url.rstrip('/')}/chat/completions",
                           json={"model": model, "messages": messages, **params})
        resp.raise_for_status()
        return resp.json()["choices"][0]["message"].get("content") or ""

    return call


def client_llm(client: Any, model: str, **params: Any) -> LiveLLM:
    """A live ``llm`` from an OpenAI SDK client (``client.chat.completions.create``)."""
    def call(messages: Messages) -> str:
        out = client.chat.completions.create(model=model, messages=messages, **params)
        return out.choices[0].message.content or ""

    return call
