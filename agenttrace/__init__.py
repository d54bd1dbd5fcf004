"""agenttrace: which agent, at which step, broke a multi-agent LLM run - and feeding that back."""

__version__ = "0.1.0"

from agenttrace.feedback import feedback, on_feedback
from agenttrace.integration import DidNotEnable, Integration
from agenttrace.models import Attribution, Lesson, Outcome, Step, Teammate, Termination, ToolCall, ToolSpec, Trajectory
from agenttrace.run import Run, run
from agenttrace.setup import Instrumentation, flush, instrument, uninstrument
from agenttrace.spans import agent_step, llm_call, plan, tool_call, workflow

__all__ = [
    "Attribution",
    "DidNotEnable",
    "Instrumentation",
    "Integration",
    "Lesson",
    "Outcome",
    "Run",
    "Step",
    "Teammate",
    "Termination",
    "ToolCall",
    "ToolSpec",
    "Trajectory",
    "agent_step",
    "feedback",
    "flush",
    "instrument",
    "llm_call",
    "on_feedback",
    "plan",
    "run",
    "tool_call",
    "uninstrument",
    "workflow",
]
