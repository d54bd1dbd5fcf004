"""The optional parts of agenttrace and the pip extra that brings each, so a missing one is named, not a traceback."""

from __future__ import annotations

import importlib.util

# extra -> the top-level modules it installs that agenttrace imports
EXTRAS: dict[str, tuple[str, ...]] = {
    "collector": ("fastapi", "uvicorn", "grpc", "google.protobuf", "opentelemetry.proto", "prometheus_client"),
    "postgres": ("psycopg",),
    "gpu": ("torch", "transformers"),
    "train": ("torch", "transformers", "trl", "peft", "datasets"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which ``pip install`` brings it."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def require(extra: str, what: str) -> None:
    """Raises ``MissingExtra`` naming ``pip install 'agenttrace[extra]'`` unless ``extra``'s modules are installed."""
    missing = [m for m in EXTRAS[extra] if not _installed(m)]
    if missing:
        raise MissingExtra(f"{what} needs the {extra} extra ({', '.join(missing)} not installed): "
                           f"pip install 'agenttrace[{extra}]'")
