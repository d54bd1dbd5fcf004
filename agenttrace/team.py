"""The team a run declares: each agent with the tools it can call, those that never act included.

A wrong hand-off sends the work to an agent with the wrong tool while the agent with the right one never acts,
so no span shows the right tool. Declared when the run starts (``agenttrace.run(..., team=...)``), the team is
recorded on the run's span as JSON (``agenttrace.run.team``) and comes back with the trajectory the collector
rebuilds (:attr:`agenttrace.models.Trajectory.team`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from agenttrace.models import Teammate, ToolSpec

Tool = Callable[..., Any] | str | ToolSpec | Mapping[str, Any]


def tool_spec(tool: Tool) -> ToolSpec:
    """A tool as its name and parameter names: a framework's tool object (:func:`_declared_parameters`), a
    Python function (its name, parameters and the first line of its docstring), a name, a :class:`ToolSpec` or
    a dict with ``name`` and ``parameters``."""
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, str):
        return ToolSpec(name=tool)
    if isinstance(tool, Mapping):
        return ToolSpec.model_validate(tool)
    metadata = getattr(tool, "metadata", None)  # LlamaIndex keeps name and description there
    name = getattr(tool, "name", None) or getattr(metadata, "name", None)
    parameters = _declared_parameters(tool)
    if isinstance(name, str) and parameters is not None:
        return ToolSpec(name=name, parameters=parameters, description=_summary(
            getattr(tool, "description", None) or getattr(metadata, "description", None), name))
    if callable(tool):
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = [p.name for p in inspect.signature(tool).parameters.values() if p.kind in kinds]
        return ToolSpec(name=getattr(tool, "__name__", type(tool).__name__), parameters=parameters,
                        description=_summary(inspect.getdoc(tool), ""))
    raise TypeError(f"a tool is a function, a name, a ToolSpec or a dict with 'name'; got {type(tool).__name__}")


def _declared_parameters(tool: Any) -> list[str] | None:
    """The parameter names a framework's tool object declares, None when it declares none this knows:
    smolagents' ``inputs``, LangChain's ``args``, a JSON schema's properties (the OpenAI Agents SDK's
    ``params_json_schema``, AutoGen's ``schema["parameters"]``, AG2's ``function_schema["parameters"]``) or a
    pydantic model's fields (CrewAI's ``args_schema``, LlamaIndex's ``metadata.fn_schema``)."""
    for fields in (getattr(tool, "inputs", None), getattr(tool, "args", None)):
        if isinstance(fields, Mapping):
            return list(fields)
    schema, function_schema = getattr(tool, "schema", None), getattr(tool, "function_schema", None)
    for json_schema in (getattr(tool, "params_json_schema", None),
                        schema.get("parameters") if isinstance(schema, Mapping) else None,
                        function_schema.get("parameters") if isinstance(function_schema, Mapping) else None):
        if isinstance(json_schema, Mapping) and isinstance(json_schema.get("properties"), Mapping):
            return list(json_schema["properties"])
    for model in (getattr(tool, "args_schema", None), getattr(getattr(tool, "metadata", None), "fn_schema", None)):
        fields = getattr(model, "model_fields", None)
        if isinstance(fields, Mapping):
            return list(fields)
    return None


def _summary(text: Any, name: str) -> str | None:
    """The first line of a tool's description that is not its own signature (LlamaIndex starts with it)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    if lines and name and lines[0].startswith(f"{name}("):
        lines.pop(0)
    return lines[0] if lines else None


def teammates(team: Mapping[str, Iterable[Tool]] | Iterable[Teammate | Mapping[str, Any]]) -> list[Teammate]:
    """``team`` as teammates: a mapping of each agent's name to its tools (``{"pricing": [get_price]}``), or
    :class:`Teammate` objects or dicts with ``name``, ``description`` and ``tools``."""
    if isinstance(team, Mapping):
        return [Teammate(name=str(name), tools=[tool_spec(t) for t in tools]) for name, tools in team.items()]
    out = []
    for member in team:
        if isinstance(member, Teammate):
            out.append(member)
        elif isinstance(member, Mapping):
            out.append(Teammate(name=member["name"], description=member.get("description"),
                                tools=[tool_spec(t) for t in member.get("tools", ())]))
        else:
            raise TypeError(f"a teammate is a Teammate or a dict with 'name' and 'tools'; got {type(member).__name__}")
    return out


def encode(team: list[Teammate]) -> str:
    """The span attribute's value."""
    return json.dumps([m.model_dump(exclude_none=True) for m in team], ensure_ascii=False)


def decode(value: Any) -> list[Teammate]:
    """The team a span attribute (JSON text) or an export (a list) holds; a :class:`ValueError` says why a
    value is not one."""
    try:
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, list):
            raise ValueError("it is not a JSON list of teammates")
        return [Teammate.model_validate(m) for m in data]
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"it is not a JSON list of teammates: {exc}".splitlines()[0]) from None
