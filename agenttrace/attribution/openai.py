"""Attribution by any OpenAI-compatible chat endpoint (vLLM serving a tracer, or a hosted model), over httpx.

Methods (``method=``):

* ``"agentracer"`` - one call with the AgenTracer prompt (``prompt.build_prompt``);
  the answer is ``<think>...</think><answer>agent | step</answer>``.
* ``"all_at_once"`` - Who&When: one call with the whole run; the answer is
  ``Agent Name: X`` / ``Step Number: Y`` / ``Reason for Mistake: Z``.
* ``"step_by_step"`` - Who&When: walk the steps in order, showing the run up to the
  current step and asking whether it is the decisive error (``Yes``/``No``);
  the first ``Yes`` is the verdict (k calls for a verdict at position k, n calls
  and no verdict if every answer is ``No``).
* ``"binary_search"`` - Who&When: show the current range of steps and ask which
  half holds the decisive error (``upper half`` = the first half, ``lower half`` =
  the second); about log2(n) calls, the last remaining step is the verdict.
* ``"a2p"`` - Abduct-Act-Predict (arXiv 2509.10401): one call with the whole run, as the
  paper's single-pass scaffold; for every step that could hold the decisive error the
  model abduces its hidden cause, states a minimal correction and predicts whether the
  corrected run succeeds, ending with ``{"hypotheses": [...]}`` (``prompt.A2P_INSTRUCTIONS``).
  The verdict is the earliest step whose correction is predicted to succeed
  (``parse.earliest_fix``); with probabilities it carries ``confidence``, the top
  ``candidates`` and ``uncertain`` (confidence below ``uncertain_below``, 0.5 by default,
  not calibrated). No correction predicted to succeed gives an undecided verdict.

An answer that cannot be read gives ``Attribution(agent=None, step=None,
reason="unparseable ...")``, never a guess.

Transport: ``httpx.AsyncClient``; ``attribute_batch`` runs the runs concurrently,
at most ``max_concurrency`` requests in flight (an ``asyncio.Semaphore`` held for
the duration of each HTTP request, not during back-off). Requests that fail with
429, 5xx, a timeout or a connection error are retried up to ``max_retries`` times
with exponential back-off (``backoff * 2**attempt`` plus jitter, capped at
``max_backoff``), honouring ``Retry-After`` (seconds or an HTTP date) when the
server sends it. Other 4xx answers and exhausted retries raise ``AttributorError``
(``on_error="record"`` turns them into an undecided Attribution instead, so one
dead request does not lose a batch).

Accounting: ``usage`` of every answer is summed into ``stats`` (requests, retries,
prompt and completion tokens) and priced with ``price_per_1m_input`` /
``price_per_1m_output`` (USD per million tokens) into ``stats.cost_usd``.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from agenttrace.attribution.base import Attributor, AttributorError
from agenttrace.attribution.parse import parse_a2p, parse_all_at_once, parse_half, parse_tracer_output, parse_yes_no
from agenttrace.attribution.prompt import A2P_CLOSING, A2P_INSTRUCTIONS, build_prompt, fit_prompt, token_counter
from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Candidate, Step, Trajectory

log = get_logger(__name__)

METHODS = ("agentracer", "all_at_once", "step_by_step", "binary_search", "a2p")
RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))

WW_SYSTEM = "You are a helpful assistant skilled in analyzing conversations."


def _ww_preamble(t: Trajectory, with_ground_truth: bool, what: str) -> str:
    parts = [
        "You are an AI assistant tasked with analyzing a multi-agent conversation history when solving a real "
        f"world problem. The problem is: {t.task or '(no task recorded)'}"
    ]
    if with_ground_truth and t.expected is not None:
        parts.append(f"The Answer for the problem is: {t.expected}")
    parts.append(what)
    return "\n".join(parts)


ALL_AT_ONCE_QUESTION = (
    "Based on this conversation, please predict the following:\n"
    "1. The name of the agent who made a mistake that should be directly responsible for the wrong solution to "
    "the real world problem. If there are no agents that make obvious mistakes, decide one single agent in your "
    "mind. Directly output the name of the agent.\n"
    "2. In which step the mistake agent first made mistake. For example, in a conversation structured as follows: "
    "Step 0 - A, Step 1 - B, Step 2 - A, if agent A made the mistake in step 2, answer 2. Output only the step number.\n"
    "3. The reason for your prediction.\n"
    "Please answer in the format:\nAgent Name: (Your prediction)\nStep Number: (Your prediction)\n"
    "Reason for Mistake: (Your reason)"
)


@dataclass
class UsageStats:
    requests: int = 0
    retries: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_per_1m_input: float = 0.0
    price_per_1m_output: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return (self.prompt_tokens * self.price_per_1m_input + self.completion_tokens * self.price_per_1m_output) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"total_tokens": self.total_tokens, "cost_usd": self.cost_usd}


class OpenAIAttributor(Attributor):
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        method: str = "agentracer",
        with_ground_truth: bool = True,
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        price_per_1m_input: float = 0.0,
        price_per_1m_output: float = 0.0,
        extra_body: dict[str, Any] | None = None,
        on_error: str = "raise",
        uncertain_below: float = 0.5,
    ) -> None:
        if method not in METHODS:
            raise AttributorError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
        if on_error not in ("raise", "record"):
            raise AttributorError("on_error must be 'raise' or 'record'")
        if not 0.0 <= uncertain_below <= 1.0:
            raise AttributorError(f"uncertain_below must be between 0 and 1, not {uncertain_below!r}")
        base_url = base_url or os.environ.get("AGENTTRACE_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise AttributorError("no base_url: pass one or set AGENTTRACE_OPENAI_BASE_URL / OPENAI_BASE_URL")
        model = model or os.environ.get("AGENTTRACE_OPENAI_MODEL")
        if not model:
            raise AttributorError("no model: pass model= or set AGENTTRACE_OPENAI_MODEL")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.model = model
        self.method = method
        self.with_ground_truth = with_ground_truth
        self.max_concurrency = max(1, int(max_concurrency))
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.extra_body = dict(extra_body or {})
        self.on_error = on_error
        self.uncertain_below = uncertain_below
        self.stats = UsageStats(price_per_1m_input=price_per_1m_input, price_per_1m_output=price_per_1m_output)
        self._lock = threading.Lock()
        self._count = token_counter()

    # ------------------------------------------------------------------ public API
    @property
    def prompt_tokens(self) -> int:
        return self.stats.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.stats.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.stats.cost_usd

    def attribute(self, trajectory: Trajectory) -> Attribution:
        return self.attribute_batch([trajectory])[0]

    def attribute_batch(self, trajectories: Sequence[Trajectory]) -> list[Attribution]:
        return _run_sync(self.aattribute_batch(trajectories))

    async def aattribute(self, trajectory: Trajectory) -> Attribution:
        return (await self.aattribute_batch([trajectory]))[0]

    async def aattribute_batch(self, trajectories: Sequence[Trajectory]) -> list[Attribution]:
        sem = asyncio.Semaphore(self.max_concurrency)
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            session = _Session(self, client, sem)
            results = await asyncio.gather(*(session.attribute(t) for t in trajectories), return_exceptions=True)
        out: list[Attribution] = []
        for t, r in zip(trajectories, results):
            if isinstance(r, BaseException):
                if self.on_error == "raise" or not isinstance(r, AttributorError):
                    raise r
                out.append(self._undecided(t, f"openai request failed: {r}"))
            else:
                out.append(r)
        return out

    # ------------------------------------------------------------------ helpers
    def _undecided(self, t: Trajectory, reason: str) -> Attribution:
        return Attribution(run_id=t.run_id, agent=None, step=None, reason=reason, attributor=self.name)

    def _decided(self, t: Trajectory, agent: str, step: int, reason: str, *, confidence: float | None = None,
                 candidates: Sequence[Candidate] = (), advice: str = "") -> Attribution:
        return Attribution(run_id=t.run_id, agent=agent, step=step, reason=reason, attributor=self.name,
                           confidence=confidence, candidates=list(candidates), advice=advice,
                           uncertain=confidence is not None and confidence < self.uncertain_below)

    def _account(self, usage: dict[str, Any] | None, *, retries: int = 0, failed: bool = False) -> None:
        with self._lock:
            self.stats.retries += retries
            if failed:
                self.stats.failed_requests += 1
                return
            self.stats.requests += 1
            if usage:
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            delay = _parse_retry_after(retry_after)
            if delay is not None:
                return min(max(delay, 0.0), self.max_backoff)
        return min(self.backoff * (2 ** attempt) * (1 + 0.25 * random.random()), self.max_backoff)


class _Session:
    """One batch: the shared client and concurrency limit."""

    def __init__(self, owner: OpenAIAttributor, client: httpx.AsyncClient, sem: asyncio.Semaphore) -> None:
        self.o = owner
        self.client = client
        self.sem = sem

    async def chat(self, messages: list[dict[str, str]]) -> str:
        o = self.o
        body: dict[str, Any] = {"model": o.model, "messages": messages}
        if o.temperature is not None:
            body["temperature"] = o.temperature
        if o.max_tokens is not None:
            body["max_tokens"] = o.max_tokens
        body.update(o.extra_body)
        headers = {"authorization": f"Bearer {o.api_key}"} if o.api_key else {}
        url = f"{o.base_url}/chat/completions"
        last = ""
        for attempt in range(o.max_retries + 1):
            retry_after = None
            try:
                async with self.sem:
                    resp = await self.client.post(url, json=body, headers=headers)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                        content = data["choices"][0]["message"].get("content") or ""
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        o._account(None, retries=attempt, failed=True)
                        raise AttributorError(f"malformed chat completion from {url}: {exc}") from exc
                    o._account(data.get("usage"), retries=attempt)
                    return content
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUS:
                    o._account(None, retries=attempt, failed=True)
                    raise AttributorError(f"{url} answered {last}")
                retry_after = resp.headers.get("retry-after")
            if attempt == o.max_retries:
                break
            delay = o._retry_delay(attempt, retry_after)
            log.warning("openai.retry", attempt=attempt + 1, delay=round(delay, 3), error=last)
            await asyncio.sleep(delay)
        o._account(None, retries=o.max_retries, failed=True)
        raise AttributorError(f"{url} failed after {o.max_retries + 1} attempts: {last}")

    # ------------------------------------------------------------------ methods
    async def attribute(self, t: Trajectory) -> Attribution:
        if not t.steps:
            return self.o._undecided(t, "no steps to attribute")
        return await getattr(self, self.o.method)(t)

    def _fit(self, t: Trajectory, system: str, preamble: str, steps: Sequence[Step], closing: str):
        return fit_prompt(system=system, preamble=preamble, steps=steps, closing=closing,
                          max_tokens=self.o.max_prompt_tokens, count=self.o._count)

    def _verdict(self, t: Trajectory, method: str, parse, text: str) -> Attribution:
        """The answer read by ``parse``: decided, or undecided with the reason when it is malformed or names no step."""
        r = parse(text, t.agents, {s.index for s in t.steps})
        if not r.parsed:
            return self.o._undecided(t, f"unparseable {method} output: {r.error}: {text[-300:]!r}")
        if r.step is None:
            return self.o._undecided(t, f"{method}: {r.reason}")
        return self.o._decided(t, r.agent, r.step, r.reason, confidence=r.confidence, candidates=r.candidates,
                               advice=r.advice)

    async def _whole_run(self, t: Trajectory, method: str, parse, **prompt: str) -> Attribution:
        """One call with the whole run in the AgenTracer layout (``prompt.build_prompt``), read by ``parse``."""
        p = build_prompt(t, with_ground_truth=self.o.with_ground_truth, max_tokens=self.o.max_prompt_tokens, **prompt)
        return self._verdict(t, method, parse, await self.chat(p.messages()))

    async def agentracer(self, t: Trajectory) -> Attribution:
        return await self._whole_run(t, "agentracer", parse_tracer_output)

    async def a2p(self, t: Trajectory) -> Attribution:
        return await self._whole_run(t, "a2p", parse_a2p, instructions=A2P_INSTRUCTIONS, closing=A2P_CLOSING)

    async def all_at_once(self, t: Trajectory) -> Attribution:
        pre = _ww_preamble(t, self.o.with_ground_truth,
                           "Identify which agent made an error, at which step, and explain the reason for the error. "
                           "Here's the conversation:")
        p = self._fit(t, WW_SYSTEM, pre, t.steps, ALL_AT_ONCE_QUESTION)
        text = await self.chat(p.messages())
        return self._verdict(t, "all_at_once", parse_all_at_once, text)

    async def step_by_step(self, t: Trajectory) -> Attribution:
        pre = _ww_preamble(t, self.o.with_ground_truth,
                           "You will review the conversation step by step. Here is the conversation history up to "
                           "the current step:")
        for k, step in enumerate(t.steps):
            closing = (
                f"The current step to review is Step {step.index} by {step.agent}. Based on the conversation history "
                "up to this step and the problem, is this the step where the decisive error was made, i.e. the "
                "mistake that, if corrected, would have led to the correct solution? Please answer in the format:\n"
                "1. Yes/No.\n2. Reason: (Your reason)"
            )
            text = await self.chat(self._fit(t, WW_SYSTEM, pre, t.steps[:k + 1], closing).messages())
            verdict = parse_yes_no(text)
            if verdict is None:
                return self.o._undecided(
                    t, f"unparseable step_by_step output at step {step.index}: {text[-300:]!r}")
            if verdict:
                return self.o._decided(t, step.agent, step.index, f"step_by_step: yes at step {step.index}: {text}")
        return self.o._undecided(t, f"step_by_step: no step of {len(t.steps)} was judged the decisive error")

    async def binary_search(self, t: Trajectory) -> Attribution:
        steps = t.steps
        lo, hi = 0, len(steps) - 1
        trail = []
        while lo < hi:
            mid = (lo + hi) // 2
            first, last = steps[lo].index, steps[hi].index
            upper = f"Step {steps[lo].index} to Step {steps[mid].index}"
            lower = f"Step {steps[mid + 1].index} to Step {steps[hi].index}"
            pre = _ww_preamble(t, self.o.with_ground_truth,
                               f"Here is the part of the conversation from Step {first} to Step {last}:")
            closing = (
                f"The decisive error (the mistake that, if corrected, would have led to the correct solution) was "
                f"made between Step {first} and Step {last}. Which half of this range contains it?\n"
                f"Upper half: {upper}\nLower half: {lower}\n"
                "Answer 'upper half' or 'lower half', then give your reason."
            )
            text = await self.chat(self._fit(t, WW_SYSTEM, pre, steps[lo:hi + 1], closing).messages())
            half = parse_half(text)
            if half is None:
                return self.o._undecided(
                    t, f"unparseable binary_search output for steps {first}-{last}: {text[-300:]!r}")
            trail.append(f"{first}-{last}:{half}")
            lo, hi = (lo, mid) if half == "upper" else (mid + 1, hi)
        step = steps[lo]
        return self.o._decided(t, step.agent, step.index, "binary_search: " + " ".join(trail))


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _run_sync(coro):
    """Runs a coroutine to completion from sync code, also when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="agenttrace-openai")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
