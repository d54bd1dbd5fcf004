"""Plain data passed between the SDK, the collector and the attributors."""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


#: The agent a verdict or a label names when no agent is at fault: the environment (a tool's service that is down).
#: Its step is the step whose tool call the environment failed.
ENVIRONMENT = "environment"


class Outcome(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class Termination(str, Enum):
    """How a run ended, after AgentBench's termination labels."""

    COMPLETED = "completed"
    CONTEXT_LIMIT_EXCEEDED = "context_limit_exceeded"
    INVALID_FORMAT = "invalid_format"
    INVALID_ACTION = "invalid_action"
    TASK_LIMIT_EXCEEDED = "task_limit_exceeded"
    ERROR = "error"
    INCOMPLETE = "incomplete"


class ToolCall(BaseModel):
    id: str | None = None
    name: str
    arguments: Any = None
    result: Any = None
    error: str | None = None


class Step(BaseModel):
    """One agent turn: who spoke, what it said and which tools it called."""

    index: int
    agent: str
    role: str = "assistant"
    content: str = ""
    input: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    transfer_to: str | None = None
    error: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    span_id: str | None = None

    def answers(self) -> list[tuple[Any, str | None]]:
        """What each of the step's calls got back: its result and its error."""
        return [(call.result, call.error) for call in self.tool_calls]

    def render(self) -> str:
        """The step as one text, tool calls and their results included."""
        parts = [self.content] if self.content else []
        for call in self.tool_calls:
            line = f"[tool call] {call.name}({value_text(call.arguments)})"
            if call.error:
                line += f" -> error: {call.error}"
            elif call.result is not None:
                line += f" -> {value_text(call.result)}"
            parts.append(line)
        if self.transfer_to:
            parts.append(f"[transfer] -> {self.transfer_to}")
        if self.error and not self.tool_calls:
            parts.append(f"[error] {self.error}")
        return "\n".join(parts)


def value_text(value: Any) -> str:
    """A tool call's arguments or result as text: a string as it is, anything else as JSON, nothing as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class ToolSpec(BaseModel):
    """A tool an agent can call: its name and the names of its parameters."""

    name: str
    parameters: list[str] = Field(default_factory=list)
    description: str | None = None


class Teammate(BaseModel):
    """An agent of the run's team, whether or not it ever acts, with the tools it can call."""

    name: str
    description: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)


class Trajectory(BaseModel):
    """A run rebuilt as an ordered list of agent steps, plus its task and outcome (and its team, when the app
    declared it: :func:`agenttrace.run`)."""

    run_id: str
    name: str | None = None
    service: str | None = None
    trace_id: str | None = None
    task: str | None = None
    expected: str | None = None
    answer: str | None = None
    outcome: Outcome = Outcome.UNKNOWN
    failure_reason: str | None = None
    termination: Termination = Termination.COMPLETED
    steps: list[Step] = Field(default_factory=list)
    team: list[Teammate] = Field(default_factory=list)
    start_time: float | None = None
    end_time: float | None = None

    @property
    def agents(self) -> list[str]:
        """Agent names in order of first appearance."""
        return list(dict.fromkeys(step.agent for step in self.steps))

    def position(self, index: int) -> int | None:
        """Where the step with :attr:`Step.index` ``index`` is in :attr:`steps`, None when no step has it. A run
        read from a message log keeps the messages' numbers, so a tool's answer folded into the call it
        answers leaves a gap; labels and verdicts name steps by index."""
        return next((k for k, step in enumerate(self.steps) if step.index == index), None)


class Label(BaseModel):
    """The ground truth of a labelled failure: the decisive error."""

    agent: str
    step: int
    reason: str | None = None


class LabelledTrajectory(BaseModel):
    """A trajectory from a data set, with its label and where it came from."""

    id: str
    subset: str
    trajectory: Trajectory
    label: Label | None = None
    tags: dict[str, str] = Field(default_factory=dict)  # e.g. framework, topology, error kind, error position


class Candidate(BaseModel):
    """One (agent, step) an attributor considered, with its probability of being the decisive error."""

    agent: str
    step: int
    probability: float


class Opinion(BaseModel):
    """What one attributor of a cascade said about a run, kept beside the verdict that decided it."""

    attributor: str
    agent: str | None
    step: int | None
    confidence: float | None = None
    uncertain: bool = False
    reason: str = ""


class Attribution(BaseModel):
    """The verdict on a failed run: which agent, at which step, and why.

    ``candidates`` are the attributor's top choices, best first (the verdict's own agent and step lead);
    ``uncertain`` is set when its calibrated confidence is below the attributor's threshold. ``attributor``
    names the one that decided; ``opinions`` keeps what other attributors of a cascade said. ``advice`` is what
    the blamed agent should do instead, as the evidence of the reason gives it ('' when it gives none); lessons
    are made of it.
    """

    run_id: str
    agent: str | None
    step: int | None
    reason: str = ""
    advice: str = ""
    attributor: str
    confidence: float | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    uncertain: bool = False
    opinions: list[Opinion] = Field(default_factory=list)
    seq: int | None = None
    created_at: float = Field(default_factory=time.time)

    @property
    def is_decided(self) -> bool:
        return self.agent is not None and self.step is not None

    @property
    def blames_an_agent(self) -> bool:
        """Decided, and on an agent: not on the environment (:data:`ENVIRONMENT`)."""
        return self.is_decided and self.agent != ENVIRONMENT


class Lesson(BaseModel):
    """An actionable lesson derived from an attribution, kept per agent."""

    agent: str
    text: str
    run_id: str | None = None
    step: int | None = None
    created_at: float = Field(default_factory=time.time)
