"""HTTP connections with a deadline: a client must send each whole request within ``read_timeout_s``.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and, past
``limit_concurrency`` connections, answers new requests with 503; but it waits
for ever for a request that arrives byte by byte, so a slow-loris client can
hold any number of connections. ``DeadlineH11Protocol`` starts a timer when a
connection opens and when a request's first bytes arrive; if the request's
headers and body are not all in when it fires, the connection is closed (a
body cut off this way reaches the app as a client disconnect). A request that
has arrived whole is never cut off, however long the app takes to answer it.

At ``limit_concurrency`` connections, the deadline alone would leave every other client with 503s until
stalled connections time out. So a new connection that finds the collector full closes the connections that
have waited longest for their request's headers, when they have waited at least ``STALLED_AFTER_S``:
headers come in one packet from a working client, so those are stalled senders, and one sender's slow-loris
does not lock the others out. Uploads whose body is streaming are never closed this way.
"""

from __future__ import annotations

import asyncio
import functools

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from agenttrace.logs import get_logger

log = get_logger("agenttrace.collector.connections")

#: How long a connection must have waited for its request's headers before a new connection may replace it.
STALLED_AFTER_S = 1.0


class DeadlineH11Protocol(H11Protocol):
    def __init__(self, *args, read_timeout_s: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout_s = read_timeout_s
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0  # when the deadline was armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if self.limit_concurrency is not None:
            self._make_room(self.limit_concurrency)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first bytes of the next request on a kept-alive connection
            self._arm()
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_since = self.loop.time()
        self._deadline = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _stalled(self, now: float) -> bool:
        """Whether this connection has waited ``STALLED_AFTER_S`` or more for its request's headers."""
        return (self._deadline is not None and self.conn.their_state is h11.IDLE
                and now - self._waiting_since >= STALLED_AFTER_S and not self.transport.is_closing())

    def _make_room(self, limit: int) -> None:
        """Closes the longest-stalled connections so that this one is below ``limit`` when its request comes."""
        open_ = [c for c in self.connections if not c.transport.is_closing()]
        excess = len(open_) - (limit - 1)
        if excess <= 0:
            return
        now = self.loop.time()
        stalled = sorted((c for c in open_ if c is not self and c._stalled(now)), key=lambda c: c._waiting_since)
        for c in stalled[:excess]:
            log.info("http.stalled_closed", client=_address(c.client), waited_s=round(now - c._waiting_since, 3),
                     connections=len(open_))
            c._disarm()
            c.transport.close()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        # IDLE: the request line and headers are not all in; SEND_BODY: the body is not.
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            log.info("http.request_timeout", client=_address(self.client), timeout_s=self.read_timeout_s,
                     state="headers" if self.conn.their_state is h11.IDLE else "body")
            self.transport.close()


def _address(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None


def protocol(read_timeout_s: float) -> functools.partial:
    """The ``http=`` protocol factory for ``uvicorn.Config``."""
    return functools.partial(DeadlineH11Protocol, read_timeout_s=read_timeout_s)
