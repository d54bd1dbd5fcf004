"""Attributors: who broke a failed run, and at which step."""

from agenttrace.attribution.base import Attributor, AttributorError, available, get_attributor

__all__ = ["Attributor", "AttributorError", "available", "get_attributor"]
