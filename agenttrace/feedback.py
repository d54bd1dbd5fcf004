"""Verdicts back into the app: ``on_feedback(callback)`` and ``async for a in feedback()``.

A background thread long-polls the collector's ``/api/v1/feedback`` with a
cursor (the last verdict's ``seq``), so no verdict is delivered twice, not even
to a client made after ``uninstrument()`` and ``instrument()`` again; it
reconnects with backoff, so the collector may start after the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import httpx

from agenttrace.context import started_here
from agenttrace.logs import get_logger
from agenttrace.models import Attribution

FeedbackCallback = Callable[[Attribution], None]
log = get_logger("agenttrace.feedback")


class FeedbackClient:
    """Polls one collector for verdicts on this process's runs and hands them to subscribers."""

    def __init__(self, endpoint: str, service: str | None, *, own_runs_only: bool = True, poll_wait: float = 10.0,
                 token: str | None = None, after: int = 0):
        self.endpoint = endpoint.rstrip("/")
        self.service = service
        from agenttrace.setup import auth_headers  # setup imports this module

        self._headers = auth_headers(token)
        self.own_runs_only = own_runs_only
        self.poll_wait = poll_wait
        self._cursor = after
        self.handled = after  # the last verdict seq handed to the subscribers (or filtered out), never one after close
        self._callbacks: list[FeedbackCallback] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, callback: FeedbackCallback) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="agenttrace-feedback", daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:  # a long-poll in flight ends on its own; nothing is delivered after this
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        backoff = 0.2
        with httpx.Client(timeout=httpx.Timeout(self.poll_wait + 10, connect=2.0), headers=self._headers) as client:
            while not self._stop.is_set():
                try:
                    batch = self._poll(client)
                    backoff = 0.2
                except (httpx.HTTPError, ValueError) as exc:
                    refused = isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403)
                    (log.warning if refused else log.debug)(
                        "feedback.retry", error=str(exc), wait_s=backoff,
                        hint="set AGENTTRACE_TOKEN to a token the collector accepts" if refused else None)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                for verdict in batch:
                    self._deliver(verdict)

    def _poll(self, client: httpx.Client) -> list[Attribution]:
        params = {"after": self._cursor, "wait": self.poll_wait}
        if self.service:
            params["service"] = self.service
        resp = client.get(f"{self.endpoint}/api/v1/feedback", params=params)
        resp.raise_for_status()
        verdicts = [Attribution.model_validate(item) for item in resp.json()["attributions"]]
        if verdicts:
            self._cursor = max(self._cursor, *(v.seq or 0 for v in verdicts))
        return verdicts

    def _deliver(self, verdict: Attribution) -> None:
        if self._stop.is_set():
            return
        self.handled = max(self.handled, verdict.seq or 0)
        if self.own_runs_only and not started_here(verdict.run_id):
            return
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(verdict)
            except Exception:
                log.exception("feedback.callback_failed", run_id=verdict.run_id)


_client: FeedbackClient | None = None
_client_lock = threading.Lock()
# Per (endpoint, service), the seq the closed shared client had handled: the client of a re-instrument starts
# from it, so a verdict reaches this process once, however often it calls instrument() and uninstrument().
_handled: dict[tuple[str, str | None], int] = {}


def _shared_client() -> FeedbackClient:
    global _client
    from agenttrace.setup import active, resolve_endpoint

    with _client_lock:
        if _client is None:
            inst = active()
            endpoint = inst.endpoint if inst else resolve_endpoint()
            service = inst.service_name if inst else None
            _client = FeedbackClient(endpoint, service, token=inst.token if inst else None,
                                     after=_handled.get((endpoint, service), 0))
        return _client


def on_feedback(callback: FeedbackCallback) -> Callable[[], None]:
    """Calls ``callback(attribution)`` for each verdict on a run this process started; returns an unsubscribe."""
    return _shared_client().subscribe(callback)


async def feedback() -> AsyncIterator[Attribution]:
    """``async for attribution in agenttrace.feedback():`` the same verdicts, as an async iterator."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Attribution] = asyncio.Queue()
    unsubscribe = on_feedback(lambda a: loop.call_soon_threadsafe(queue.put_nowait, a))
    try:
        while True:
            yield await queue.get()
    finally:
        unsubscribe()


def close_feedback() -> None:
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
            _handled[(_client.endpoint, _client.service)] = _client.handled
            _client = None
