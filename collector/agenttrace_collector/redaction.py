"""Server-side redaction: secrets and personal data rewritten in every span before it is stored.

Configured with built-in patterns (``BUILTINS``: API keys, AWS access keys,
bearer tokens, private key blocks, emails) and/or the operator's regular
expressions; each match becomes ``[REDACTED:<name>]``. Every string the
collector keeps goes through it: span names, status messages, attribute values
(inside arrays and key-value lists too), event names and attributes, link
attributes. Texts that are JSON (GenAI messages) are redacted string by string,
so they stay valid JSON whatever a pattern matches. A collector without
patterns has no ``Redactor`` and stores spans as they came.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agenttrace.redaction import redact_value
from agenttrace_collector.auth import ConfigError

BUILTINS: dict[str, str] = {
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
    "api_key": r"\b(?:sk|pk|rk)-(?:[A-Za-z]+-)?[A-Za-z0-9_\-]{16,}|\bgh[pousr]_[A-Za-z0-9]{30,}"
               r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}|\bAIza[0-9A-Za-z_\-]{35}",
    "aws_key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
               r"|(?i:aws_secret_access_key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}",
    "bearer_token": r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]{8,}=*",
    "email": r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b",
}


class Redactor:
    """``Redactor.configured(builtins=True, patterns=[...])``; ``redactor.text(s)``, ``redactor.request(req)``."""

    def __init__(self, patterns: dict[str, str]) -> None:
        try:
            self.patterns = [(re.compile(p, re.DOTALL), f"[REDACTED:{name}]") for name, p in patterns.items()]
            # One pass to tell whether a text holds anything to redact: most texts don't.
            self._any = re.compile("|".join(f"(?:{p})" for p in patterns.values()), re.DOTALL)
        except re.error as exc:
            raise ConfigError(f"redaction pattern does not compile: {exc} in {exc.pattern!r}") from None

    @classmethod
    def configured(cls, *, builtins: bool, patterns: Iterable[str] = (), pattern_file: str | None = None
                   ) -> Redactor | None:
        """The redactor for the collector's options; None when there is nothing to redact."""
        mine = list(patterns)
        if pattern_file is not None:
            try:
                lines = Path(pattern_file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read the redaction pattern file {pattern_file}: {exc}") from None
            mine += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        chosen = dict(BUILTINS) if builtins else {}
        chosen.update({f"pattern{i}": p for i, p in enumerate(mine, 1)})
        return cls(chosen) if chosen else None

    def text(self, value: str) -> str:
        if not self._any.search(value):
            return value
        for rx, replacement in self.patterns:
            value = rx.sub(replacement, value)
        return value

    def request(self, request: ExportTraceServiceRequest) -> None:
        """Rewrites, in place, every string of every span of an OTLP export."""
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name = self.text(span.name)
                    span.status.message = self.text(span.status.message)
                    self._attributes(span.attributes)
                    for event in span.events:
                        event.name = self.text(event.name)
                        self._attributes(event.attributes)
                    for link in span.links:
                        self._attributes(link.attributes)

    def _attributes(self, attributes) -> None:
        for kv in attributes:
            self._value(kv.value)

    def _value(self, value: AnyValue) -> None:
        kind = value.WhichOneof("value")
        if kind == "string_value":
            value.string_value = redact_value(value.string_value, self.text)
        elif kind == "array_value":
            for item in value.array_value.values:
                self._value(item)
        elif kind == "kvlist_value":
            self._attributes(value.kvlist_value.values)
