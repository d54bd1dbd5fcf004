"""A scripted OpenAI-compatible LLM server on loopback: real HTTP, prepared answers.

It stands in for the model, and only for the model, when real frameworks are
tested: the framework's own HTTP client talks to it exactly as to a provider.

A *reply* is a string (assistant text), or a dict with ``content`` and/or
``tool_calls`` (``[{"name": ..., "arguments": {...}}]``). The script is either
a list of replies served in order, or a callable ``request_body -> reply`` for
routing by agent (e.g. on the system prompt) when runs interleave.

``delay_s`` holds every answer that long (a slow model); ``in_flight`` counts the
requests being answered now and ``peak_in_flight`` the most at once, so tests can
see whether a client's requests overlapped.

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream``; a stream ends with the
finish reason, then a usage-only chunk, as OpenAI's with ``include_usage``),
``POST /v1/responses`` (the OpenAI Responses API, non-streaming and streaming),
``GET /v1/models``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | dict[str, Any]
Script = Sequence[Reply] | Callable[[dict[str, Any]], Reply]


class ScriptExhausted(RuntimeError):
    pass


class ScriptedLLM:
    def __init__(self, script: Script, *, model: str = "scripted-model", host: str = "127.0.0.1",
                 delay_s: float = 0.0) -> None:
        self._script = script
        self._queue = list(script) if not callable(script) else None
        self.model = model
        self.delay_s = delay_s
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = _Server((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ScriptedLLM:
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------
    def next_reply(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            return self._take_reply(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _take_reply(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            if self._queue is None:
                reply = self._script(body)  # type: ignore[operator]
            elif self._queue:
                reply = self._queue.pop(0)
            else:
                raise ScriptExhausted(f"script exhausted after {len(self.requests) - 1} replies")
            n = next(self._ids)
        if isinstance(reply, str):
            reply = {"content": reply}
        calls = [
            {"id": c.get("id") or f"call_{n}_{i}", "name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}
            for i, c in enumerate(reply.get("tool_calls") or ())
        ]
        return {"id": n, "content": reply.get("content"), "tool_calls": calls}


def _usage(body: dict[str, Any], reply: dict[str, Any]) -> tuple[int, int]:
    prompt = len(json.dumps(body.get("messages") or body.get("input") or "")) // 4
    completion = len(reply.get("content") or "") // 4 + 10 * len(reply["tool_calls"])
    return prompt, completion


def _chat_completion(llm: ScriptedLLM, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply["content"]}
    if reply["tool_calls"]:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in reply["tool_calls"]
        ]
    prompt, completion = _usage(body, reply)
    return {
        "id": f"chatcmpl-{reply['id']}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or llm.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply["tool_calls"] else "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _chat_chunks(llm: ScriptedLLM, body: dict[str, Any], reply: dict[str, Any]) -> list[dict[str, Any]]:
    full = _chat_completion(llm, body, reply)
    base = {k: full[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    delta: dict[str, Any] = {"role": "assistant", "content": reply["content"] or ""}
    if reply["tool_calls"]:
        delta["tool_calls"] = [
            {"index": i, **call} for i, call in enumerate(full["choices"][0]["message"]["tool_calls"])
        ]
    finish = full["choices"][0]["finish_reason"]
    # as OpenAI streams with stream_options.include_usage: the finish reason, then usage alone (no choices);
    # usage is sent whether or not it was asked for
    return [
        base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        base | {"choices": [], "usage": full["usage"]},
    ]


def _response(llm: ScriptedLLM, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reply["content"]:
        output.append({
            "type": "message", "id": f"msg_{reply['id']}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": reply["content"], "annotations": []}],
        })
    for call in reply["tool_calls"]:
        output.append({
            "type": "function_call", "id": f"fc_{call['id']}", "call_id": call["id"], "name": call["name"],
            "arguments": call["arguments"], "status": "completed",
        })
    prompt, completion = _usage(body, reply)
    return {
        "id": f"resp_{reply['id']}", "object": "response", "created_at": int(time.time()), "status": "completed",
        "model": body.get("model") or llm.model, "output": output, "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [], "temperature": 1.0, "top_p": 1.0,
        "usage": {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }


class _Server(ThreadingHTTPServer):
    # the stdlib's listen backlog of 5 resets connections when 20+ parallel runs call at once
    request_queue_size = 256


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": llm.model, "object": "model", "owned_by": "agenttrace"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._json(400, {"error": {"message": "body is not JSON"}})
                return
            path = self.path.split("?")[0].rstrip("/")
            if not (path.endswith("/chat/completions") or path.endswith("/responses")):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                reply = llm.next_reply(body)
            except ScriptExhausted as exc:
                self._json(500, {"error": {"message": str(exc), "type": "script_exhausted"}})
                return
            if path.endswith("/chat/completions"):
                if body.get("stream"):
                    self._sse([("", c) for c in _chat_chunks(llm, body, reply)] + [("", "[DONE]")])
                else:
                    self._json(200, _chat_completion(llm, body, reply))
            else:
                resp = _response(llm, body, reply)
                if body.get("stream"):
                    self._sse(_response_events(resp))
                else:
                    self._json(200, resp)

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, events: list[tuple[str, Any]]) -> None:
            chunks = []
            for name, payload in events:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                chunks.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
            body = "".join(chunks).encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _response_events(resp: dict[str, Any]) -> list[tuple[str, Any]]:
    seq = itertools.count()
    created = resp | {"status": "in_progress", "output": []}
    events: list[tuple[str, Any]] = [("response.created", {"type": "response.created", "response": created, "sequence_number": next(seq)})]
    for i, item in enumerate(resp["output"]):
        events.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": i, "item": item, "sequence_number": next(seq)}))
        events.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": i, "item": item, "sequence_number": next(seq)}))
    events.append(("response.completed", {"type": "response.completed", "response": resp, "sequence_number": next(seq)}))
    return events


def route_by_system_prompt(routes: dict[str, Sequence[Reply]]) -> Callable[[dict[str, Any]], Reply]:
    """A script that picks the reply queue whose key occurs in the request's system/instructions text.

    Lets parallel runs of several agents share one server: each agent's replies
    are served in order, whatever the interleaving.
    """
    queues = {key: list(replies) for key, replies in routes.items()}
    lock = threading.Lock()

    def script(body: dict[str, Any]) -> Reply:
        text = _system_text(body)
        with lock:
            for key, queue in queues.items():
                if key in text:
                    if not queue:
                        raise ScriptExhausted(f"no replies left for {key!r}")
                    return queue.pop(0)
        raise ScriptExhausted(f"no route matches system prompt {text[:200]!r}")

    return script


def _system_text(body: dict[str, Any]) -> str:
    parts = [body.get("instructions") or ""]
    messages = body.get("messages") or (body.get("input") if isinstance(body.get("input"), list) else [])
    for msg in messages:
        if isinstance(msg, dict) and msg.get("role") in ("system", "developer"):
            content = msg.get("content")
            parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)
