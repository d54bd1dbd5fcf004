"""A crash during ingest, shared by the store tests: senders stream exports, the collector is SIGKILLed mid-stream."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from agenttrace.local_collector import LocalCollector

Send = Callable[[httpx.Client, Any], int]  # (client, payload) -> HTTP status


def ingest_until_killed(collector: LocalCollector, payloads: Sequence[tuple[Any, set[bytes]]], send: Send,
                        *, senders: int = 8, kill_after: int = 40) -> set[bytes]:
    """Streams ``(payload, span_ids)`` from ``senders`` threads, kills the collector after ``kill_after``
    acknowledged exports, and returns the span ids of every acknowledged export."""
    acked: set[bytes] = set()
    lock = threading.Lock()
    stop = threading.Event()
    sent = threading.Semaphore(0)

    def sender(k: int) -> None:
        with httpx.Client(timeout=10) as client:
            for payload, ids in payloads[k::senders]:
                if stop.is_set():
                    return
                try:
                    status = send(client, payload)
                except httpx.HTTPError:
                    return  # the collector is gone
                if status == 200:
                    with lock:
                        acked.update(ids)
                    sent.release()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    try:
        for _ in range(kill_after):  # kill mid-stream, after a good number of acknowledged exports
            assert sent.acquire(timeout=15), "the collector stopped acknowledging exports"
        collector.kill()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return acked
