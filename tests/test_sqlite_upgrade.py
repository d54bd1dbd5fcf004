"""A database an earlier build made: opening the SQLite store adds the columns it lacks and keeps what it holds."""

from __future__ import annotations

import sqlite3

from agenttrace.models import Attribution


def test_a_verdicts_table_without_advice_gets_the_column_and_keeps_its_verdicts(tmp_path):
    from agenttrace_collector.store import Store

    path = tmp_path / "earlier.db"
    with sqlite3.connect(path) as conn:  # the attributions table as the build before advice made it
        conn.execute("CREATE TABLE attributions (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, "
                     "service TEXT, agent TEXT, step INTEGER, reason TEXT NOT NULL, attributor TEXT NOT NULL, "
                     "confidence REAL, created_at REAL NOT NULL, candidates TEXT, uncertain INTEGER NOT NULL DEFAULT 0, "
                     "opinions TEXT)")
        conn.execute("INSERT INTO attributions (run_id, service, agent, step, reason, attributor, created_at) "
                     "VALUES ('old', 'svc', 'fetcher', 2, 'it assumed 95 EUR', 'cpu', 1.0)")
    store = Store(path)
    try:
        advised = Attribution(run_id="new", agent="fetcher", step=2, reason="it assumed 95 EUR", attributor="cpu",
                              advice="look up a value you lack, or say that you lack it, instead of assuming one")
        assert store.save_attribution(advised, "svc") is not None
        old, new = store.attributions(after=0, service="svc")
        assert (old.run_id, old.reason, old.advice) == ("old", "it assumed 95 EUR", "")
        assert (new.run_id, new.advice) == ("new", advised.advice)
    finally:
        store.close()
