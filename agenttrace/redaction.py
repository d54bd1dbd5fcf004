"""The app's redaction hook, run over every exported span, whoever wrote its content.

Integrations that let a framework write its own GenAI content (PydanticAI's and
AG2's native instrumentation, upstream instrumentors) bypass agenttrace's
content helpers, so redaction happens at the last moment before export: the
span's name, its status message, every string attribute of the span and of its
events (exception messages included) go through the hook; JSON texts are
redacted string by string, so they stay valid JSON.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from agenttrace.content import Redactor, maybe_json
from agenttrace.span_rewrite import rebuilt


def redact_value(value: Any, redact: Redactor) -> Any:
    """An attribute value redacted: a string (JSON text string by string), or each item of a sequence."""
    if isinstance(value, str):
        if value[:1] in ("{", "["):
            doc = maybe_json(value)
            if not isinstance(doc, str):
                return json.dumps(_tree(doc, redact), ensure_ascii=False)
        return redact(value)
    if isinstance(value, (list, tuple)):
        return tuple(redact_value(v, redact) for v in value)
    return value


def _tree(doc: Any, redact: Redactor) -> Any:
    if isinstance(doc, str):
        return redact(doc)
    if isinstance(doc, dict):
        return {k: _tree(v, redact) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_tree(v, redact) for v in doc]
    return doc


def _attributes(attrs, redact: Redactor) -> dict[str, Any]:
    return {k: redact_value(v, redact) for k, v in (attrs or {}).items()}


def redacted(span: ReadableSpan, redact: Redactor) -> ReadableSpan:
    return rebuilt(span, name=redact(span.name), attributes=_attributes(span.attributes, redact),
                   events=[Event(e.name, _attributes(e.attributes, redact), e.timestamp) for e in span.events],
                   status=_status(span.status, redact))


def _status(status: Status, redact: Redactor) -> Status:
    if not status.description:
        return status
    return Status(status.status_code, redact(status.description))
