"""The collector's JSON API: runs, trajectories, verdicts, the feedback long-poll, lessons, health."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from agenttrace.models import Attribution, Lesson, Trajectory
from agenttrace_collector.auth import Principal, request_principal
from agenttrace_collector.ingest import IngestWriter
from agenttrace_collector.pipeline import Pipeline
from agenttrace_collector.store import Store

MAX_CANDIDATES = 10  # run ids listed when a prefix is ambiguous


class RunSummary(BaseModel):
    run_id: str
    name: str | None
    service: str | None
    outcome: str
    termination: str
    n_steps: int
    start_time: float | None
    end_time: float | None
    agent: str | None = None
    step: int | None = None


class AttributionJob(BaseModel):
    state: str = Field(description="queued, running, done or failed (after the last attempt; see last_error)")
    attempts: int
    last_error: str | None
    created_at: float
    updated_at: float


class RunDetail(BaseModel):
    trajectory: Trajectory
    attributions: list[Attribution]
    job: AttributionJob | None = Field(None, description="the run's attribution job: a verdict pending, or why "
                                                          "it failed (failed runs only)")


class FeedbackBatch(BaseModel):
    attributions: list[Attribution]
    cursor: int


class Health(BaseModel):
    status: str = Field(description="ok; lagging (traces wait longer than they should); stalled (the pipeline "
                                    "stopped, or keeps failing); answered with HTTP 503 when stalled")
    committed_spans: int
    attributor: str | None
    backlog_traces: int = Field(description="traces due for assembly now")
    lag_s: float | None = Field(description="how long the oldest due trace has waited")
    quarantined_traces: int = Field(description="traces set aside because processing them raised")
    detail: str | None = None


class QuarantinedTrace(BaseModel):
    trace_id: str
    service: str | None
    error: str
    failed_at: float


MAX_SQL_INT = 2**63 - 1  # the largest offset or cursor the stores' integers hold
LAG_ALERT_S = 30.0  # a due trace waiting longer than this makes the pipeline "lagging"
STALL_AFTER_FAILURES = 3  # ticks in a row that failed make it "stalled"


def api_router(store: Store, writer: IngestWriter, pipeline: Pipeline, attributor_name: str | None) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/health", response_model=Health, tags=["meta"],
                responses={503: {"model": Health, "description": "the pipeline is stalled"}})
    def health(response: Response) -> Health:
        backlog, lag = store.pipeline_backlog(pipeline.settle_s, pipeline.idle_timeout_s)
        status, detail = "ok", None
        if not pipeline.alive:
            status, detail = "stalled", "the pipeline thread has stopped"
        elif pipeline.consecutive_failures >= STALL_AFTER_FAILURES:
            status, detail = "stalled", f"the pipeline failed {pipeline.consecutive_failures} ticks in a row (see the log)"
        elif lag is not None and lag > LAG_ALERT_S:
            status, detail = "lagging", f"{backlog} traces due, the oldest for {lag:.0f} s"
        if status == "stalled":
            response.status_code = 503
        return Health(status=status, committed_spans=writer.committed_spans, attributor=attributor_name,
                      backlog_traces=backlog, lag_s=lag, quarantined_traces=store.count_quarantined(), detail=detail)

    @router.get("/quarantine", response_model=list[QuarantinedTrace], tags=["meta"],
                summary="Traces set aside because processing them raised, with the error")
    def list_quarantined(limit: int = Query(100, ge=1, le=1000),
                         caller: Principal = Depends(request_principal)) -> list[dict]:
        return [q for q in store.quarantined(limit) if caller.may_read(q["service"])]

    @router.post("/quarantine/retry", tags=["meta"],
                 summary="Queue quarantined traces (one, or all) for assembly again, e.g. after an upgrade; admin only")
    def retry_quarantined(trace_id: str | None = Query(None, pattern="^[0-9a-fA-F]{32}$"),
                          caller: Principal = Depends(request_principal)) -> dict:
        caller.check_admin()
        released = store.release_quarantined(bytes.fromhex(trace_id) if trace_id else None)
        pipeline.wake()
        return {"released": released}

    @router.get("/runs", response_model=list[RunSummary], tags=["runs"], summary="List runs, newest first")
    def list_runs(outcome: str | None = None,
                  service: str | None = Query(None, description="Runs whose service contains this text (any case)"),
                  name: str | None = Query(None, description="Runs whose name contains this text (any case)"),
                  limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_SQL_INT),
                  caller: Principal = Depends(request_principal)) -> list[dict]:
        return store.list_runs(outcome=outcome, service=service, name=name, limit=limit, offset=offset,
                               only_service=caller.service)

    def find_run(run_id: str, caller: Principal) -> tuple[str, Trajectory]:
        """The run with this id, or with this unique id prefix; 404 if none, 409 listing them if several.

        A service token finds only its service's runs: another's answer 404, as if they did not exist."""
        traj = store.get_run(run_id)
        if traj is not None and caller.may_read(traj.service):
            return run_id, traj
        matches = store.run_ids_starting_with(run_id, limit=MAX_CANDIDATES + 1, only_service=caller.service)
        if not matches:
            raise HTTPException(404, f"no run {run_id!r} (it may still be assembling)")
        if len(matches) > 1:
            shown = ", ".join(matches[:MAX_CANDIDATES]) + (", ..." if len(matches) > MAX_CANDIDATES else "")
            raise HTTPException(409, f"run id prefix {run_id!r} is ambiguous: it matches {shown}")
        return matches[0], store.get_run(matches[0])

    @router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"],
                summary="One run (by id or unique id prefix): trajectory and verdicts")
    def get_run(run_id: str, caller: Principal = Depends(request_principal)) -> RunDetail:
        run_id, traj = find_run(run_id, caller)
        return RunDetail(trajectory=traj, attributions=store.attributions(run_id=run_id), job=store.job(run_id))

    @router.get("/runs/{run_id}/whowhen", tags=["runs"],
                summary="The run (by id or unique id prefix) in Who&When / TracerTraj JSON shape")
    def get_run_whowhen(run_id: str, caller: Principal = Depends(request_principal)) -> dict:
        from agenttrace.datasets import to_whowhen

        run_id, traj = find_run(run_id, caller)
        verdicts = store.attributions(run_id=run_id)
        return to_whowhen(traj, None) | ({"attribution": verdicts[-1].model_dump()} if verdicts else {})

    @router.get("/feedback", response_model=FeedbackBatch, tags=["feedback"],
                summary="Long-poll verdicts after a cursor (the last seq seen)")
    async def feedback(after: int = Query(0, ge=0, le=MAX_SQL_INT), service: str | None = None,
                       wait: float = Query(0, ge=0, le=60), limit: int = Query(100, ge=1, le=1000),
                       caller: Principal = Depends(request_principal)) -> FeedbackBatch:
        service = caller.read_filter(service)
        deadline = time.monotonic() + wait
        while True:
            found = store.attributions(after=after, service=service, limit=limit)
            if found or time.monotonic() >= deadline:
                return FeedbackBatch(attributions=found, cursor=max([after] + [a.seq or 0 for a in found]))
            await asyncio.sleep(0.1)

    @router.get("/lessons", response_model=list[Lesson], tags=["lessons"])
    def list_lessons(agent: str | None = None, caller: Principal = Depends(request_principal)) -> list[Lesson]:
        return store.lessons(agent, only_service=caller.service)

    @router.delete("/lessons", tags=["lessons"], summary="Delete lessons (all, or one agent's); admin tokens only")
    def clear_lessons(agent: str | None = None, caller: Principal = Depends(request_principal)) -> dict:
        caller.check_admin()
        return {"deleted": store.clear_lessons(agent)}

    return router
