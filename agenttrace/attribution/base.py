"""The one interface every attributor implements, and the registry the collector and CLI choose from."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from agenttrace.models import Attribution, Trajectory


class AttributorError(Exception):
    """An attributor could not be built or could not produce a verdict."""


class Attributor(ABC):
    name: ClassVar[str]

    @abstractmethod
    def attribute(self, trajectory: Trajectory) -> Attribution:
        """The decisive error of one failed trajectory."""

    def attribute_batch(self, trajectories: Sequence[Trajectory]) -> list[Attribution]:
        """Several at once; attributors that batch on a device override this."""
        return [self.attribute(t) for t in trajectories]


# name -> "module:Class"; imported on demand so that `cpu` never pulls torch or httpx clients in.
_REGISTRY: dict[str, str] = {
    "cpu": "agenttrace.attribution.cpu:CpuAttributor",
    "tracer": "agenttrace.attribution.tracer:TracerAttributor",
    "openai": "agenttrace.attribution.openai:OpenAIAttributor",
    "cascade": "agenttrace.attribution.cascade:CascadeAttributor",
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_attributor(name: str, **options: Any) -> Attributor:
    """Builds the attributor registered as ``name`` with its options (see each class for them)."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise AttributorError(f"unknown attributor {name!r}; choose one of: {', '.join(available())}") from None
    module, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(**options)
