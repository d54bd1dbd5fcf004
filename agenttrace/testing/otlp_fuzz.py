"""Mutated OTLP trace exports, for fuzzing the collector (tests/test_fuzz.py, bench/fuzz.py).

``seed_request`` builds one well-formed multi-agent run (a run span, agent turns, chat spans with GenAI
messages, a tool call, a handoff) the way the SDK writes it. ``mutate`` applies a few random mutations of
the kinds that have broken collectors: attribute values of another type (a JavaScript app's numeric run
id), malformed message JSON, parent links that cycle, point at themselves or nest very deep, extreme
timestamps, status codes and kinds out of range, odd names. Every mutated request is still valid
protobuf, so a collector must accept it (or reject it with a 4xx) and keep assembling other runs.
``mutate_body`` makes byte-level variants of encoded bodies for the receivers' parsers.
"""

from __future__ import annotations

import json
import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

SERVICE = "fuzz"


def _set(value: AnyValue, v) -> None:
    if isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, int):
        value.int_value = v
    elif isinstance(v, float):
        value.double_value = v
    elif isinstance(v, bytes):
        value.bytes_value = v
    elif isinstance(v, list):
        value.array_value.SetInParent()
        for item in v:
            _set(value.array_value.values.add(), item)
    elif isinstance(v, dict):
        value.kvlist_value.SetInParent()
        for key, item in v.items():
            kv = value.kvlist_value.values.add()
            kv.key = key
            _set(kv.value, item)
    else:
        value.string_value = str(v)


def _attr(span: Span, key: str, v) -> None:
    kv = span.attributes.add()
    kv.key = key
    _set(kv.value, v)


def _messages(role: str, text: str, tool_calls: list[dict] | None = None) -> str:
    parts = [{"type": "text", "content": text}] + [{"type": "tool_call", **c} for c in tool_calls or ()]
    return json.dumps([{"role": role, "parts": parts}])


def seed_request(rng: random.Random, *, run_id: str | None = None, failed: bool = True,
                 start_ns: int | None = None) -> ExportTraceServiceRequest:
    """One complete run: Planner plans, hands off to Coder, who calls a tool and answers (wrongly if ``failed``).

    It lasts 100 ns from ``start_ns`` (default: a random moment in November 2023).
    """
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", SERVICE
    spans = rs.scope_spans.add().spans
    trace_id = rng.randbytes(16)
    t0 = start_ns if start_ns is not None else 1_700_000_000_000_000_000 + rng.randrange(10**12)
    ids = iter(rng.randbytes(8) for _ in range(100))

    def span(name: str, parent: bytes, start: int, end: int, **attrs) -> Span:
        s = spans.add()
        s.trace_id, s.span_id, s.parent_span_id, s.name = trace_id, next(ids), parent, name
        s.start_time_unix_nano, s.end_time_unix_nano, s.kind = t0 + start, t0 + end, 1
        for key, v in attrs.items():
            _attr(s, key.replace("__", "."), v)
        return s

    answer = "41" if failed else "42"
    run = span("agenttrace.run", b"", 0, 100, agenttrace__span__kind="run",
               agenttrace__run__id=run_id or rng.randbytes(8).hex(), agenttrace__run__name="fuzz-run",
               agenttrace__run__task="What is 6 times 7?", agenttrace__run__expected="42",
               agenttrace__run__answer=answer)
    planner = span("invoke_agent Planner", run.span_id, 1, 30, gen_ai__operation__name="invoke_agent",
                   gen_ai__agent__name="Planner", agenttrace__transfer__target="Coder")
    span("chat model", planner.span_id, 2, 29, gen_ai__operation__name="chat", gen_ai__request__model="m",
         gen_ai__input__messages=_messages("user", "What is 6 times 7?"),
         gen_ai__output__messages=_messages("assistant", "Coder: multiply 6 by 7."),
         gen_ai__response__finish_reasons=["stop"], gen_ai__usage__input_tokens=12)
    coder = span("invoke_agent Coder", run.span_id, 31, 99, gen_ai__operation__name="invoke_agent",
                 gen_ai__agent__name="Coder")
    span("chat model", coder.span_id, 32, 50, gen_ai__operation__name="chat", gen_ai__request__model="m",
         gen_ai__input__messages=_messages("user", "multiply 6 by 7"),
         gen_ai__output__messages=_messages("assistant", "", [{"id": "c1", "name": "multiply",
                                                               "arguments": {"a": 6, "b": 7}}]))
    span("execute_tool multiply", coder.span_id, 51, 60, gen_ai__operation__name="execute_tool",
         gen_ai__tool__name="multiply", gen_ai__tool__call__id="c1", gen_ai__tool__call__arguments='{"a": 6, "b": 7}',
         gen_ai__tool__call__result="42")
    span("chat model", coder.span_id, 61, 98, gen_ai__operation__name="chat", gen_ai__request__model="m",
         gen_ai__output__messages=_messages("assistant", f"The answer is {answer}."))
    return req


ODD_VALUES = [0, -1, 2**63 - 1, -(2**63), 1.5, float("nan"), float("inf"), True, False, b"\x00\xff", "", "\x00",
              "[", "{", "null", "[1]", '[{"parts":[1]}]', '[{"parts":"x"}]', '[{"parts":[{"type":5}]}]',
              '[{"tool_calls":[{"function":"f"}]}]', '[{"role":5,"parts":[{"type":"tool_call","name":7}]}]',
              '{"role":"user","parts":[{"type":"text","content":{"a":[1,2]}}]}', "x" * 5000, "\u202e\u0000\ud7ff",
              [], [1, "a", None], ["stop", 3], {"k": [1, {"j": 2}]}, {"": None}]


def mutate(req: ExportTraceServiceRequest, rng: random.Random, n: int = 3) -> ExportTraceServiceRequest:
    """A copy of ``req`` with ``n`` random mutations (see the module doc)."""
    out = ExportTraceServiceRequest()
    out.CopyFrom(req)
    spans = out.resource_spans[0].scope_spans[0].spans
    for _ in range(n):
        s = rng.choice(spans)
        kind = rng.randrange(9)
        if kind <= 2 and len(s.attributes):  # an attribute's value of another type / malformed JSON
            attr = rng.choice(s.attributes)
            attr.value.Clear()
            _set(attr.value, rng.choice(ODD_VALUES))
        elif kind == 3:  # a new attribute with a well-known key and an odd value
            _attr(s, rng.choice(["agenttrace.run.id", "agenttrace.run.expected", "gen_ai.agent.name",
                                 "agenttrace.span.kind", "gen_ai.operation.name", "gen_ai.tool.call.arguments",
                                 "openinference.span.kind", "traceloop.span.kind", "agenttrace.transfer.target",
                                 "gen_ai.response.finish_reasons", "llm.input_messages.0.message.role",
                                 "gen_ai.prompt.0.tool_calls.0.name", "metadata"]), rng.choice(ODD_VALUES))
        elif kind == 4:  # parent links: itself, a cycle, a sibling, none
            other = rng.choice(spans)
            choice = rng.randrange(3)
            s.parent_span_id = s.span_id if choice == 0 else other.span_id if choice == 1 else b""
            if choice == 1:
                other.parent_span_id = s.span_id
        elif kind == 5:  # extreme times
            s.start_time_unix_nano = rng.choice([0, 1, 2**63 - 1, 2**63, 2**64 - 1])
            s.end_time_unix_nano = rng.choice([0, 2**63, 2**64 - 1, s.start_time_unix_nano - 1 if s.start_time_unix_nano else 0])
        elif kind == 6:  # status and kind out of range, odd names
            s.status.code = rng.choice([0, 1, 2, 3, 2**31 - 1, -5])
            s.status.message = rng.choice(["", "boom", "\x00", "e" * 3000])
            s.kind = rng.choice([0, 5, 6, 9, -1, 2**31 - 1])
            s.name = rng.choice(["", "invoke_agent", "invoke_agent ", "execute_tool", "chat", "\u0000", "n" * 1000])
        elif kind == 7:  # events with odd attributes
            ev = s.events.add()
            ev.name = rng.choice(["exception", "gen_ai.choice", "gen_ai.user.message", "gen_ai.client.inference.operation.details"])
            for key in ("exception.message", "message", "content", "tool_calls", "gen_ai.input.messages"):
                if rng.random() < 0.5:
                    kv = ev.attributes.add()
                    kv.key = key
                    _set(kv.value, rng.choice(ODD_VALUES))
        else:  # a duplicated span id
            s.span_id = rng.choice(spans).span_id
    return out


def deep_chain(rng: random.Random, depth: int) -> ExportTraceServiceRequest:
    """One trace whose spans form a single parent chain ``depth`` spans deep (a recursion-limit breaker)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", SERVICE
    spans = rs.scope_spans.add().spans
    trace_id, parent = rng.randbytes(16), b""
    for i in range(depth):
        s = spans.add()
        s.trace_id, s.span_id, s.parent_span_id = trace_id, rng.randbytes(8), parent
        s.name, s.start_time_unix_nano, s.end_time_unix_nano = "invoke_agent A" if i % 2 else "chat m", 10 + i, 10**6 - i
        _attr(s, "gen_ai.operation.name", "invoke_agent" if i % 2 else "chat")
        parent = s.span_id
    return req


def mutate_body(body: bytes, rng: random.Random) -> bytes:
    """Byte-level variants of an encoded body: truncated, a flipped byte, a splice, duplicated."""
    if not body:
        return body
    kind = rng.randrange(4)
    if kind == 0:
        return body[: rng.randrange(len(body))]
    if kind == 1:
        i = rng.randrange(len(body))
        return body[:i] + bytes([body[i] ^ (1 << rng.randrange(8))]) + body[i + 1:]
    if kind == 2:
        i, j = sorted(rng.randrange(len(body)) for _ in range(2))
        return body[:i] + body[j:] + body[i:j]
    return body + body
