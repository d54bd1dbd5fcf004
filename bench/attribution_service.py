"""Attribution as a service against the inline design it replaced (issue 10), measured in one run.

    .venv/bin/python bench/attribution_service.py                 # everything (about 10 min on 2 cores)
    .venv/bin/python bench/attribution_service.py --runs 500 --skip postgres

The peer is the collector (and SDK) of ``--inline-ref`` (default 347cfb3, the last commit where the pipeline
thread called the attributor inline, one run at a time), run from a git worktree of that commit in the same
virtual environment. Parts:

1. ``--runs`` runs, a fifth failing, sent as OTLP at ``--rate`` runs/s to each collector, whose attributor is the
   ``openai`` attributor against a scripted OpenAI-compatible server that answers every request after 1 s.
   Printed side by side: time from a run's end to its trajectory being assembled (p50/p99; it must not grow with
   attribution load), from its end to its verdict (p50/p99), and until the last verdict.
2. Verdicts per second of the queue design with 1, 4 and 16 concurrent requests to that server (up to 4 runs per
   attribute_batch call, one worker per 4 concurrent requests).
3. Two ``agenttrace worker`` processes on one PostgreSQL database (scripts/postgres.sh), one killed with kill -9
   halfway: every failed run must end with exactly one verdict.
4. The SDK's end-to-feedback latency with the ``cpu`` attributor: an app runs failing runs one after another and
   times each from the end of ``with agenttrace.run(...)`` to its ``on_feedback`` callback, on both designs.

Times are read from the stores themselves: a run's end is its trajectory's end time, its assembly is the run
row's ``updated_at`` (first assembly: each run is sent once), its verdict the verdict's ``created_at``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agenttrace.local_collector import LocalCollector  # noqa: E402
from agenttrace.testing.otlp_fuzz import seed_request  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402

VERDICT = "<think>the Coder answered 41</think><answer>Coder | 2</answer>"
PROTOBUF = {"content-type": "application/x-protobuf"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def worktree(ref: str, where: Path) -> dict[str, str]:
    """A checkout of ``ref`` and the environment that runs its code instead of this tree's."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where), ref], check=True,
                   capture_output=True)
    return {"PYTHONPATH": f"{where}:{where / 'collector'}:{where / 'integrations'}"}


def send_runs(c: LocalCollector, n: int, rate: float, tag: str) -> list[str]:
    """``n`` runs, every fifth failing, each ending as it is sent; returns the failed runs' ids."""
    failed = []

    def one(i: int) -> None:
        is_failed = i % 5 == 0
        run_id = f"{tag}-{i}"
        if is_failed:
            failed.append(run_id)
        body = seed_request(random.Random(run_id), run_id=run_id, failed=is_failed,
                            start_ns=time.time_ns() - 100).SerializeToString()
        for _ in range(50):
            resp = httpx.post(f"{c.endpoint}/v1/traces", content=body, headers=PROTOBUF, timeout=60)
            if resp.status_code != 503:
                break
            time.sleep(0.25)
        resp.raise_for_status()

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            pool.submit(one, i)
    return failed


def latencies(db: str, tag: str, failed: list[str], timeout: float) -> dict:
    """Waits until every failed run has a verdict, then reads assembly and verdict latencies from the store."""
    deadline = time.monotonic() + timeout
    conn = sqlite3.connect(db, timeout=30)
    while time.monotonic() < deadline:
        done = conn.execute("SELECT COUNT(*) FROM attributions WHERE run_id LIKE ?", (f"{tag}-%",)).fetchone()[0]
        if done >= len(failed):
            break
        time.sleep(0.5)
    rows = conn.execute("SELECT r.run_id, json_extract(r.trajectory, '$.end_time'), r.updated_at, a.created_at "
                        "FROM runs r LEFT JOIN attributions a ON a.run_id = r.run_id WHERE r.run_id LIKE ?",
                        (f"{tag}-%",)).fetchall()
    conn.close()
    assembled = [updated - end for _, end, updated, _ in rows]
    verdicts = [created - end for _, end, _, created in rows if created is not None]
    return {"runs": len(rows), "verdicts": len(verdicts), "assembled": assembled, "verdict": verdicts}


def part_latency(args, env_inline: dict, tmp: Path) -> None:
    print(f"\n## 1. {args.runs} runs ({args.runs // 5} failing) at {args.rate:g} runs/s; openai attributor, "
          f"scripted server answering after {args.delay:g} s")
    results = {}
    for design, env, extra in (("queue (this tree)", None, ("--batch-size", "16", "-o", "max_concurrency=16")),
                               (f"inline ({args.inline_ref})", env_inline, ("-o", "max_concurrency=16"))):
        tag = "queue" if env is None else "inline"
        with ScriptedLLM(lambda body: VERDICT, delay_s=args.delay) as llm, \
                LocalCollector(tmp / f"{tag}.db", attributor="openai", log_file=tmp / f"{tag}.log", env=env,
                               extra_args=("-o", f"base_url={llm.base_url}", "-o", "model=tracer", "--settle", "0.2",
                                           *extra)) as c:
            started = time.monotonic()
            failed = send_runs(c, args.runs, args.rate, tag)
            r = latencies(c.db, tag, failed, timeout=args.runs * args.delay + 120)
            r["wall"] = time.monotonic() - started
            results[design] = r
            print(f"  {design}: {r['runs']} runs assembled, {r['verdicts']}/{len(failed)} verdicts", flush=True)
    print("\n| design | end -> assembled p50 / p99 (s) | end -> verdict p50 / p99 (s) | until last verdict (s) |")
    print("|---|---|---|---|")
    for design, r in results.items():
        print(f"| {design} | {pct(r['assembled'], 50):.3f} / {pct(r['assembled'], 99):.3f} | "
              f"{pct(r['verdict'], 50):.2f} / {pct(r['verdict'], 99):.2f} | {r['wall']:.1f} |")


def part_throughput(args, tmp: Path) -> None:
    print(f"\n## 2. Verdicts per second, queue design, server answering after {args.delay:g} s")
    print("\n| concurrent requests | failed runs | verdicts/s |")
    print("|---|---|---|")
    for conc in (1, 4, 16):
        n_failed = max(12, 4 * conc)
        tag = f"conc{conc}"
        with ScriptedLLM(lambda body: VERDICT, delay_s=args.delay) as llm, \
                LocalCollector(tmp / f"{tag}.db", attributor="openai", log_file=tmp / f"{tag}.log",
                               extra_args=("-o", f"base_url={llm.base_url}", "-o", "model=tracer",
                                           "-o", f"max_concurrency={conc}", "--settle", "0.2",
                                           "--attribution-workers", str(max(1, conc // 4)),
                                           "--batch-size", str(min(conc, 4)))) as c:
            failed = send_runs(c, n_failed * 5 - 4, 200, tag)  # every fifth fails: n_failed of them
            r = latencies(c.db, tag, failed, timeout=n_failed * args.delay + 60)
            conn = sqlite3.connect(c.db)
            first_end, last_verdict = conn.execute(
                "SELECT MIN(json_extract(r.trajectory, '$.end_time')), MAX(a.created_at) FROM attributions a "
                "JOIN runs r ON r.run_id = a.run_id WHERE a.run_id LIKE ?", (f"{tag}-%",)).fetchone()
            conn.close()
            print(f"| {conc} | {r['verdicts']} | {r['verdicts'] / (last_verdict - first_end):.2f} |", flush=True)


def part_postgres(args, tmp: Path) -> None:
    import psycopg

    n = args.pg_runs
    print(f"\n## 3. Two `agenttrace worker` processes on one PostgreSQL database, {n // 5} failed runs, "
          "one worker killed with kill -9 halfway")
    # directly in /tmp: the server runs as "postgres", which cannot enter the bench's private temporary folder
    pg_env = {"AGENTTRACE_PG_DIR": tempfile.mkdtemp(prefix="agenttrace-pg-", dir="/tmp"), "AGENTTRACE_PG_OWNER": str(os.getpid())}
    started = subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "start"], env={**os.environ, **pg_env}, capture_output=True, text=True, check=True)
    url = started.stdout.strip().splitlines()[-1]
    try:
        with ScriptedLLM(lambda body: VERDICT, delay_s=0.5) as llm, \
                LocalCollector(url, attributor="none", log_file=tmp / "pg-collector.log",
                               extra_args=("--attribution-workers", "0", "--settle", "0.2")) as c:
            cmd = [str(Path(sys.executable).with_name("agenttrace")), "worker", "--db", url, "--attributor", "openai",
                   "-o", f"base_url={llm.base_url}", "-o", "model=tracer", "--batch-size", "4",
                   "--attribution-timeout", "5"]
            logs = [open(tmp / f"worker-{i}.log", "wb") for i in range(2)]
            workers = [subprocess.Popen(cmd, stdout=log, stderr=log) for log in logs]
            failed = send_runs(c, n, 100, "pg")

            def count(sql: str) -> int:
                with psycopg.connect(url, autocommit=True) as conn:
                    return conn.execute(sql, ("pg-%",)).fetchone()[0]

            while count("SELECT COUNT(*) FROM attributions WHERE run_id LIKE %s") < len(failed) // 2:
                time.sleep(0.2)
            workers[0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            while count("SELECT COUNT(*) FROM attribution_jobs WHERE run_id LIKE %s AND state = 'done'") < len(failed):
                if time.monotonic() - killed_at > 120:
                    break
                time.sleep(0.2)
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
                w.wait(30)
            with psycopg.connect(url, autocommit=True) as conn:
                per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM attributions WHERE run_id LIKE %s "
                                            "GROUP BY run_id", ("pg-%",)).fetchall())
        once = sum(1 for r in failed if per_run.get(r) == 1)
        print(f"\n{len(failed)} failed runs: {once} with exactly one verdict, "
              f"{sum(1 for r in failed if r not in per_run)} with none, {sum(1 for v in per_run.values() if v > 1)} "
              f"with more than one (finished {time.monotonic() - killed_at:.1f} s after the kill)")
    finally:
        subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "stop"], env={**os.environ, **pg_env},
                       capture_output=True)


APP = textwrap.dedent("""
    import json, sys, threading, time
    import agenttrace
    n, endpoint = int(sys.argv[1]), sys.argv[2]
    agenttrace.instrument(endpoint=endpoint, service_name="latency-bench", frameworks=[])
    ended, got, done = {}, {}, threading.Event()
    def seen(v):
        got[v.run_id] = time.monotonic()
        if len(got) == n:
            done.set()
    agenttrace.on_feedback(seen)
    for i in range(n):
        with agenttrace.run("latency", task="What is 6 times 7?", expected="42") as run:
            with agenttrace.agent_step("Planner", input="What is 6 times 7?") as s:
                s.output("Coder: multiply 6 by 7.")
            with agenttrace.agent_step("Coder", input="multiply 6 by 7") as s:
                s.output("6 times 7 is 41.")
            run.finish("41")
        ended[run.run_id] = time.monotonic()
        time.sleep(0.3)
    done.wait(60)
    print(json.dumps([got[r] - ended[r] for r in ended if r in got]))
""")


def part_sdk(args, env_inline: dict, tmp: Path) -> None:
    print(f"\n## 4. SDK: run end -> on_feedback with the cpu attributor, {args.sdk_runs} failing runs in a row")
    print("\n| design | p50 (s) | p99 (s) | verdicts |")
    print("|---|---|---|---|")
    (tmp / "app.py").write_text(APP)
    for design, env in (("queue (this tree)", None), (f"inline ({args.inline_ref})", env_inline)):
        tag = "sdk-queue" if env is None else "sdk-inline"
        with LocalCollector(tmp / f"{tag}.db", attributor="cpu", log_file=tmp / f"{tag}.log", env=env) as c:
            out = subprocess.run([sys.executable, str(tmp / "app.py"), str(args.sdk_runs), c.endpoint],
                                 env={**os.environ, **(env or {})}, capture_output=True, text=True,
                                 timeout=300)
            values = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []
            print(f"| {design} | {pct(values, 50):.3f} | {pct(values, 99):.3f} | {len(values)}/{args.sdk_runs} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="runs sent per second")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the scripted server takes per answer")
    parser.add_argument("--pg-runs", type=int, default=500)
    parser.add_argument("--sdk-runs", type=int, default=30)
    parser.add_argument("--inline-ref", default="347cfb3")
    parser.add_argument("--skip", action="append", default=[], choices=["latency", "throughput", "postgres", "sdk"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agenttrace-service-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env_inline = worktree(args.inline_ref, tmp / "inline-tree")
        try:
            if "sdk" not in args.skip:
                part_sdk(args, env_inline, tmp)
            if "throughput" not in args.skip:
                part_throughput(args, tmp)
            if "latency" not in args.skip:
                part_latency(args, env_inline, tmp)
            if "postgres" not in args.skip:
                part_postgres(args, tmp)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "inline-tree")],
                           capture_output=True)


if __name__ == "__main__":
    main()
