"""PydanticAI: one Agent per member; a handoff is an output function (``transfer_to_<name>``) and the app passes
control on, PydanticAI's programmatic hand-off. A tool's service failure is a ModelRetry the model sees."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pydantic_ai import Agent, ModelRetry, Tool
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.output import ToolOutput
from pydantic_ai.providers.openai import OpenAIProvider

from agenttrace.suite.drivers import HandoffDriver
from agenttrace.suite.worlds import ToolError

MAX_HANDOFFS = 100


@dataclass(frozen=True)
class Handoff:
    target: str


def _handoff_to(target: str):
    def transfer() -> Handoff:
        return Handoff(target)

    transfer.__doc__ = f"Hand the conversation over to {target}."
    return ToolOutput(transfer, name=f"transfer_to_{target}")


def _retrying(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToolError as exc:
            raise ModelRetry(str(exc)) from exc

    return call


class Driver(HandoffDriver):
    framework = "pydantic_ai"
    integration = "pydantic_ai"

    async def run(self, episode, tools, base_url: str) -> str:
        model = OpenAIChatModel("scripted-model", provider=OpenAIProvider(base_url=base_url, api_key="suite"))
        agents = {spec.name: Agent(model, name=spec.name, system_prompt=spec.instructions,
                                   tools=[Tool(_retrying(tools[name]), name=name, max_retries=3) for name in spec.tools],
                                   output_type=[*(_handoff_to(o.name) for o in episode.agents if o is not spec), str])
                  for spec in episode.agents}
        current, transcript = episode.first_agent, []
        for _ in range(MAX_HANDOFFS):
            prompt = "\n".join([episode.task.text, *transcript])
            result = await agents[current].run(prompt)
            transcript += [f"{current}: {part.content}" for message in result.new_messages()
                           if isinstance(message, ModelResponse) for part in message.parts if isinstance(part, TextPart)]
            if not isinstance(result.output, Handoff):
                return result.output
            current = result.output.target
        raise RuntimeError(f"no answer after {MAX_HANDOFFS} handoffs")
