"""Attribution workers: lease queued jobs from the store, attribute them in batches, store the verdicts.

Assembly queues one job per failed run (``store.save_run(..., enqueue=True)``, in the transaction that
saves the run) and never waits for attribution. A worker leases up to ``batch_size`` jobs, gathering for
at most ``batch_wait_s`` so that a burst of failures goes to the attributor as one ``attribute_batch``
call (the tracer attributor runs them as one batch on the device; the openai attributor sends them
concurrently). A lease expires after ``lease_s``: a worker killed mid-job loses nothing, another takes the
job. A call that raises or runs past ``timeout_s`` is retried after an exponential backoff; after
``max_attempts`` the job is ``failed`` with its error, which the API, CLI and UI show. A run gets at most
one verdict: the verdict insert skips a run that has one.

The same class runs inside the collector (``--attribution-workers N``) and as its own process
(``agenttrace worker --db postgresql://...``) on other machines, a GPU box for instance.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from agenttrace.attribution import Attributor
from agenttrace.lessons import lesson_for
from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Trajectory
from agenttrace_collector.store import SqlStore

log = get_logger("agenttrace.collector.workers")


RECLAIM_EVERY_S = 5.0  # how often an idle worker looks for leases held by dead processes of its machine


class AttributionTimeout(Exception):
    pass


class AttributionWorkers:
    def __init__(self, store: SqlStore, attributor: Attributor, *, workers: int = 1, batch_size: int = 8,
                 batch_wait_s: float = 0.05, lease_s: float = 300.0, timeout_s: float = 240.0,
                 max_attempts: int = 3, backoff_s: float = 2.0, concurrency: int | None = None,
                 poll_s: float = 0.25, on_verdict: Callable[[Attribution, Trajectory, float], None] | None = None) -> None:
        if timeout_s >= lease_s:
            raise ValueError("the attribution timeout must be shorter than the lease, or two workers may run a job")
        self.store = store
        self.attributor = attributor
        self.n_workers = workers
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.poll_s = poll_s
        self.on_verdict = on_verdict
        # at most ``concurrency`` attributor calls at once in this process (None: one per worker)
        self._calls = threading.Semaphore(concurrency or workers)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._threads = [threading.Thread(target=self._run, args=(f"{self._owner}:{i}",),
                                          name=f"agenttrace-attribution-{i}", daemon=True) for i in range(workers)]

    def start(self) -> AttributionWorkers:
        self._reclaim_from_the_dead()
        for t in self._threads:
            t.start()
        log.info("workers.started", workers=self.n_workers, attributor=self.attributor.name,
                 batch_size=self.batch_size, batch_wait_s=self.batch_wait_s)
        return self

    def _reclaim_from_the_dead(self) -> None:
        """Jobs leased by a process of this machine that no longer runs (killed, say) are taken at once,
        not after their lease; other machines' leases are left to expire."""
        for owner in self.store.job_owners():
            host, pid, _ = (owner.rsplit(":", 2) + ["", ""])[:3]  # owners are "host:pid:worker"
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                expired = self.store.expire_leases(owner)
                log.info("workers.reclaimed", owner=owner, jobs=expired)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the workers; a batch still running past ``timeout`` keeps its lease, which then expires."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        for i, t in enumerate(self._threads):
            if not t.is_alive():
                self.store.release_jobs(f"{self._owner}:{i}")

    # ---- one worker ----------------------------------------------------------------------------
    def _run(self, owner: str) -> None:
        failures, reclaimed = 0, time.monotonic()
        while not self._stop.is_set():
            try:
                jobs = self._lease(owner)
                if jobs:
                    self._attribute(owner, jobs)
                else:
                    if owner.endswith(":0") and time.monotonic() - reclaimed > RECLAIM_EVERY_S:
                        self._reclaim_from_the_dead()  # a worker process beside us was killed
                        reclaimed = time.monotonic()
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                failures = 0
            except Exception:  # the store is unreachable, say: leases expire, the jobs wait for us or another
                failures += 1
                if failures == 1:
                    log.exception("workers.failed", owner=owner)
                self._stop.wait(min(30.0, self.poll_s * 2 ** min(failures, 7)))

    def _lease(self, owner: str) -> list[tuple[str, int]]:
        jobs = self.store.lease_jobs(owner, self.batch_size, self.lease_s)
        deadline = time.monotonic() + self.batch_wait_s
        while jobs and len(jobs) < self.batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.01))
            jobs += self.store.lease_jobs(owner, self.batch_size - len(jobs), self.lease_s)
        return jobs

    def _attribute(self, owner: str, jobs: list[tuple[str, int]]) -> None:
        todo: list[tuple[Trajectory, int]] = []
        for run_id, attempt in jobs:
            trajectory = self.store.get_run(run_id)
            if trajectory is None:
                self._give_up(owner, run_id, attempt, "the run is no longer in the store", final=True)
            elif self.store.has_attribution(run_id):  # a worker died after storing it: nothing left to do
                self.store.finish_job(run_id, owner)
            else:
                todo.append((trajectory, attempt))
        if not todo:
            return
        started = time.perf_counter()
        try:
            with self._calls:
                verdicts = self._call([t for t, _ in todo])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("attribution.failed", runs=len(todo), attributor=self.attributor.name, error=error)
            for trajectory, attempt in todo:
                self._give_up(owner, trajectory.run_id, attempt, error, final=attempt >= self.max_attempts)
            return
        seconds = time.perf_counter() - started
        for (trajectory, _), verdict in zip(todo, verdicts):
            self._store(owner, trajectory, verdict, seconds)

    def _call(self, trajectories: list[Trajectory]) -> list[Attribution]:
        """``attribute_batch`` with a time limit (the call runs on a thread of its own, abandoned if late)."""
        result: Future = Future()

        def target() -> None:
            try:
                result.set_result(self.attributor.attribute_batch(trajectories))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting worker
                result.set_exception(exc)

        threading.Thread(target=target, name="agenttrace-attribute-call", daemon=True).start()
        try:
            verdicts = result.result(timeout=self.timeout_s)
        except TimeoutError:
            raise AttributionTimeout(f"no verdict within {self.timeout_s:g} s") from None
        if len(verdicts) != len(trajectories):
            raise RuntimeError(f"{self.attributor.name} returned {len(verdicts)} verdicts for {len(trajectories)} runs")
        return verdicts

    def _store(self, owner: str, trajectory: Trajectory, verdict: Attribution, seconds: float) -> None:
        try:  # the lesson first, so whoever sees the verdict finds its lesson
            lesson = lesson_for(verdict, trajectory)
            if lesson is not None:
                self.store.add_lesson(lesson)
        except Exception:
            log.exception("lesson.failed", run_id=trajectory.run_id)
        saved = self.store.save_attribution(verdict, trajectory.service)
        self.store.finish_job(trajectory.run_id, owner)
        if saved is None:
            log.info("run.already_attributed", run_id=trajectory.run_id)
            return
        log.info("run.attributed", run_id=saved.run_id, agent=saved.agent, step=saved.step,
                 attributor=saved.attributor, seconds=round(seconds, 4))
        if self.on_verdict is not None:
            self.on_verdict(saved, trajectory, seconds)

    def _give_up(self, owner: str, run_id: str, attempt: int, error: str, *, final: bool) -> None:
        delay = self.backoff_s * 2 ** (attempt - 1)
        self.store.retry_job(run_id, owner, error, delay_s=delay, final=final)
        if final:
            log.warning("attribution.gave_up", run_id=run_id, attempts=attempt, error=error)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
