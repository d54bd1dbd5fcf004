"""The plug-in interface for framework integrations, and their discovery through entry points.

A third party adds an integration by subclassing :class:`Integration` and
registering it in the ``agenttrace.integrations`` entry-point group::

    [project.entry-points."agenttrace.integrations"]
    myframework = "my_package.tracing:MyFrameworkIntegration"
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod
from typing import ClassVar

from opentelemetry.trace import TracerProvider
from packaging.requirements import Requirement

ENTRY_POINT_GROUP = "agenttrace.integrations"


class DidNotEnable(Exception):
    """The integration cannot run here: its framework is missing, too old or too new."""


class Integration(ABC):
    """One framework's tracing. ``install`` and ``uninstall`` are symmetric and called at most once each."""

    #: the name users pass in ``instrument(frameworks=[...])``
    name: ClassVar[str]
    #: distribution requirements that must hold before ``install`` patches anything
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def install(self, tracer_provider: TracerProvider) -> None: ...

    @abstractmethod
    def uninstall(self) -> None: ...

    @classmethod
    def check_requirements(cls) -> None:
        """Raises DidNotEnable with a clear message when a required distribution is absent or out of range."""
        for spec in cls.requires:
            req = Requirement(spec)
            try:
                version = importlib.metadata.version(req.name)
            except importlib.metadata.PackageNotFoundError:
                raise DidNotEnable(f"{cls.name}: {req.name} is not installed") from None
            if req.specifier and not req.specifier.contains(version, prereleases=True):
                raise DidNotEnable(f"{cls.name}: needs {spec}, found {req.name} {version}")


def discover() -> dict[str, importlib.metadata.EntryPoint]:
    """The integrations registered in the entry-point group, by name (not yet imported)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load(entry_point: importlib.metadata.EntryPoint) -> type[Integration]:
    cls = entry_point.load()
    if not (isinstance(cls, type) and issubclass(cls, Integration)):
        raise TypeError(f"entry point {entry_point.name!r} is not an agenttrace Integration: {cls!r}")
    return cls
