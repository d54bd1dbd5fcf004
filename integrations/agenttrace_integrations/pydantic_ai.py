"""PydanticAI: its native OpenTelemetry instrumentation, pointed at agenttrace's tracer provider.

PydanticAI emits GenAI spans itself (``Agent.instrument_all``): ``invoke_agent
{name}`` with ``gen_ai.agent.name``, ``chat {model}`` with ``gen_ai.input/output.messages``
(tool calls as parts) and ``execute_tool {name}`` with call id, arguments and
result, all correctly nested - including an agent run started inside another
agent's tool, which the collector reads as a delegation (``transfer_to``) of the
calling step. This integration only turns it on with agenttrace's provider and
content switch, and restores the previous default on uninstall. Agents that
set their own ``instrument=`` keep it.

The capture switch is honoured, and the redaction hook runs at export like on
every span; truncation is not applied (PydanticAI serialises messages itself).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import TracerProvider

from agenttrace.content import policy
from agenttrace.integration import DidNotEnable, Integration

_UNSET = object()


class PydanticAIIntegration(Integration):
    name = "pydantic_ai"
    requires = ("pydantic-ai-slim>=1.0",)

    def __init__(self) -> None:
        self._previous: Any = _UNSET

    @classmethod
    def check_requirements(cls) -> None:
        try:  # the distribution is pydantic-ai-slim (also pulled in by the pydantic-ai meta package)
            super().check_requirements()
        except DidNotEnable:
            import importlib.util

            if importlib.util.find_spec("pydantic_ai") is None:
                raise

    def install(self, tracer_provider: TracerProvider) -> None:
        try:
            from pydantic_ai import Agent
            from pydantic_ai.models.instrumented import InstrumentationSettings
        except ImportError as exc:  # pragma: no cover - requirements were checked
            raise DidNotEnable(f"pydantic_ai: {exc}") from exc
        self._previous = getattr(Agent, "_instrument_default", False)
        Agent.instrument_all(InstrumentationSettings(tracer_provider=tracer_provider,
                                                     include_content=policy().capture))

    def uninstall(self) -> None:
        if self._previous is _UNSET:
            return
        from pydantic_ai import Agent

        Agent.instrument_all(self._previous)
        self._previous = _UNSET
