"""The ingest writer: one thread commits queued span batches in group transactions.

A request is acknowledged only after the transaction holding its spans has
committed. When a group transaction fails, each request of the group is
committed alone, so one sender's spans that the store refuses fail only that
sender's request (``Rejected``, answered with a 4xx), never its neighbours'.

Memory is bounded twice: the queue in spans (``max_pending_spans``), and the
bytes held for requests not yet committed (``ByteBudget``: bodies being read,
decompressed and queued, see the receivers). When either is full the request
gets ``Overloaded`` at once and the receiver answers with back-pressure (HTTP
503 / gRPC UNAVAILABLE with a retry delay) instead of buffering without limit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from agenttrace.logs import get_logger
from agenttrace_collector.metrics import Metrics
from agenttrace_collector.otlp import SpanRow
from agenttrace_collector.store import Store

log = get_logger("agenttrace.collector.ingest")


class Overloaded(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"collector is at capacity; retry in {retry_after_s:g}s")
        self.retry_after_s = retry_after_s


class ByteBudget:
    """Bytes the collector holds for requests not yet committed, across all connections, up to ``limit``.

    A request takes what it holds as it reads (``take``) and gives it all back when answered (``give_back``).
    A request is still taken when nothing else is held, so one as large as the whole budget can succeed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            if self.held and self.held + n > self.limit:
                raise Overloaded(retry_after_s=1.0)
            self.held += n

    def give_back(self, n: int) -> None:
        with self._lock:
            self.held -= n

    def request(self) -> Held:
        """``with budget.request() as held: held.take(n)`` - what one request holds, given back when it ends."""
        return Held(self)


class Held:
    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def take(self, n: int) -> None:
        self.budget.take(n)
        self.bytes += n

    def give_back(self, n: int) -> None:
        """Gives back ``n`` of the bytes taken, for what the request no longer holds."""
        self.budget.give_back(n)
        self.bytes -= n

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc) -> None:
        self.budget.give_back(self.bytes)


class Rejected(Exception):
    """The store refused a request's spans for what they hold (a value out of its range, say)."""


DATA_ERRORS = ("DataError", "IntegrityError")  # sqlite3's and psycopg's names for "this row cannot be stored"


class IngestWriter:
    def __init__(self, store: Store, *, max_pending_spans: int = 200_000, max_pending_bytes: int = 256 * 1024 * 1024,
                 max_batch_spans: int = 20_000, on_commit: Callable[[], None] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.bytes = ByteBudget(max_pending_bytes)  # taken by the receivers for each request they read
        self.metrics = metrics
        self.max_pending_spans = max_pending_spans
        self.max_batch_spans = max_batch_spans
        self.on_commit = on_commit
        self._queue: queue.Queue[tuple[list[SpanRow], Future] | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self.committed_spans = 0
        self._thread = threading.Thread(target=self._run, name="agenttrace-ingest", daemon=True)
        self._thread.start()

    def submit(self, rows: list[SpanRow]) -> Future:
        """Queues spans; the future resolves once they are committed."""
        fut: Future = Future()
        if self.metrics is not None:
            self.metrics.spans_received.inc(len(rows))
        if not rows:
            fut.set_result(0)
            return fut
        with self._lock:
            # An export larger than the whole queue is still taken when the queue is empty; refusing it
            # would answer "retry later" to a request that could never succeed.
            if self._pending and self._pending + len(rows) > self.max_pending_spans:
                raise Overloaded(retry_after_s=1.0)
            self._pending += len(rows)
        self._queue.put((rows, fut))
        return fut

    @property
    def pending_spans(self) -> int:
        return self._pending

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            size = len(item[0])
            while size < self.max_batch_spans:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                group.append(nxt)
                size += len(nxt[0])
            self._commit(group, size)

    def _commit(self, group: list[tuple[list[SpanRow], Future]], size: int) -> None:
        try:
            self._write(group)
        finally:
            with self._lock:
                self._pending -= size

    def _write(self, group: list[tuple[list[SpanRow], Future]]) -> None:
        batch = [row for rows, _ in group for row in rows]
        try:
            self.store.write_spans(batch)
        except Exception as exc:
            if len(group) > 1:  # find the request at fault: the others' spans are committed without it
                log.warning("ingest.group_commit_failed", requests=len(group), error=f"{type(exc).__name__}: {exc}")
                for item in group:
                    self._write([item])
                return
            refused = isinstance(exc, (OverflowError, ValueError)) or type(exc).__name__ in DATA_ERRORS
            log.warning("ingest.commit_failed", spans=len(batch), refused=refused, error=f"{type(exc).__name__}: {exc}")
            group[0][1].set_exception(Rejected(f"the store refused these spans: {exc}") if refused else exc)
            return
        self.committed_spans += len(batch)
        if self.metrics is not None:
            self.metrics.spans_stored.inc(len(batch))
        for rows, fut in group:
            fut.set_result(len(rows))
        if self.on_commit is not None:
            self.on_commit()
