"""Message content on spans: the GenAI JSON message layout, capture switch, truncation (redaction: redaction.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
TRUNCATION_MARK = "…[agenttrace: truncated {n} chars]"

Redactor = Callable[[str], str]


@dataclass
class ContentPolicy:
    """What happens to message text before it is put on a span."""

    capture: bool = True
    max_chars: int = 32_000

    @classmethod
    def from_env(cls, capture: bool | None, max_chars: int) -> ContentPolicy:
        if capture is None:
            raw = os.environ.get(CAPTURE_ENV)
            capture = True if raw is None else raw.strip().lower() not in {"false", "0", "no", "off", "no_content"}
        return cls(capture=capture, max_chars=max_chars)

    def text(self, value: str) -> tuple[str, bool]:
        """Truncates one text; returns it and whether it was cut."""
        if len(value) <= self.max_chars:
            return value, False
        cut = len(value) - self.max_chars
        return value[: self.max_chars] + TRUNCATION_MARK.format(n=cut), True


_policy = ContentPolicy()


def policy() -> ContentPolicy:
    return _policy


def set_policy(new: ContentPolicy) -> None:
    global _policy
    _policy = new


def to_messages(value: Any, default_role: str) -> list[dict[str, Any]]:
    """Normalises a str, an OpenAI-style message or a list of them into GenAI messages with parts."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": default_role, "parts": [{"type": "text", "content": value}]}]
    if isinstance(value, Mapping):
        return [_message(value, default_role)]
    if isinstance(value, Iterable):
        return [m for item in value for m in to_messages(item, default_role)]
    return to_messages(str(value), default_role)


def _message(msg: Mapping[str, Any], default_role: str) -> dict[str, Any]:
    if "parts" in msg:
        return dict(msg)
    role = msg.get("role") or default_role
    parts: list[dict[str, Any]] = []
    content = msg.get("content")
    if isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for piece in content:
            if isinstance(piece, Mapping) and piece.get("type") == "text":
                parts.append({"type": "text", "content": piece.get("text", "")})
            elif piece is not None:
                parts.append({"type": "text", "content": str(piece)})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function", call)
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": fn.get("name"),
                "arguments": maybe_json(fn.get("arguments")),
            }
        )
    if role == "tool":
        parts = [{"type": "tool_call_response", "id": msg.get("tool_call_id"), "response": content}]
    out: dict[str, Any] = {"role": role, "parts": parts}
    if msg.get("name"):
        out["name"] = msg["name"]
    return out


def maybe_json(value: Any) -> Any:
    """A JSON text parsed, or the value as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _shrink(value: Any, pol: ContentPolicy) -> tuple[Any, bool]:
    """Truncates every string inside a JSON-like value, so the JSON stays valid."""
    if isinstance(value, str):
        return pol.text(value)
    if isinstance(value, Mapping):
        out, cut = {}, False
        for key, item in value.items():
            out[key], c = _shrink(item, pol)
            cut |= c
        return out, cut
    if isinstance(value, (list, tuple)):
        items = [_shrink(item, pol) for item in value]
        return [i for i, _ in items], any(c for _, c in items)
    return value, False


def messages_attribute(value: Any, default_role: str) -> tuple[str, bool] | None:
    """The JSON string for gen_ai.input/output.messages under the current policy, or None if not captured."""
    pol = policy()
    if not pol.capture:
        return None
    messages, truncated = _shrink(to_messages(value, default_role), pol)
    return json.dumps(messages, ensure_ascii=False, default=str), truncated


def value_attribute(value: Any) -> tuple[str, bool] | None:
    """A tool argument or result as a string (JSON for structured values), or None if not captured."""
    pol = policy()
    if not pol.capture or value is None:
        return None
    value, truncated = _shrink(value, pol)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text, truncated
