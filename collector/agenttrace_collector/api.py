"""The collector's JSON API: runs, trajectories, verdicts, the feedback long-poll, lessons, health."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from agenttrace.logs import get_logger
from agenttrace.models import Attribution, Label, LabelledTrajectory, Lesson, Trajectory
from agenttrace_collector.auth import PRINCIPAL_KEY, Forbidden, Principal, request_principal
from agenttrace_collector.failure_modes import DEFAULT_FAILURE_WINDOW_S, FailureModes, group_failures
from agenttrace_collector.review import judged
from agenttrace_collector.spans_api import SpanOut, span_out
from agenttrace_collector.spanview import decode
from agenttrace_collector.ingest import IngestWriter
from agenttrace_collector.pipeline import Pipeline
from agenttrace_collector.store import RunFilter, Store

log = get_logger("agenttrace.collector.api")

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
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = Field(None, description="USD, from the price table; None when no model was priced")
    confidence: float | None = None
    uncertain: bool = False
    job_state: str | None = Field(None, description="the attribution job's state (failed runs)")
    reviewed: str | None = Field(None, description="confirmed or corrected, once a person reviewed the verdict")


class RunUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost: float | None


class ReviewIn(BaseModel):
    """Confirm the run's verdict (no step), or correct it: the step of the decisive error, and its agent."""

    step: int | None = Field(None, ge=0, description="the decisive step; omitted: the verdict is right")
    agent: str | None = Field(None, max_length=200, description="the step's agent (checked against the run), or "
                              "'environment': a service failed the step's tool call, no agent is to blame")
    note: str | None = Field(None, max_length=4000)


class Review(BaseModel):
    run_id: str
    service: str | None
    verdict_seq: int | None
    agent: str
    step: int
    confirmed: bool = Field(description="true: the verdict was right; false: corrected to this agent and step")
    note: str | None
    reviewer: str
    created_at: float


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
    usage: RunUsage
    review: Review | None = None


class FeedbackBatch(BaseModel):
    attributions: list[Attribution]
    cursor: int


class Liveness(BaseModel):
    """The health report of a request without a token (a load balancer, a Kubernetes probe)."""

    status: str = Field(description="ok; lagging (traces wait longer than they should); stalled (the pipeline "
                                    "stopped, or keeps failing); answered with HTTP 503 when stalled")


class Health(Liveness):
    """The health report of a request with a valid token."""

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

    @router.get("/health", response_model=Health | Liveness, tags=["meta"],
                summary="Whether the pipeline keeps up: the status alone without a token, the whole report with one",
                description="A request without an Authorization header (a load balancer, a Kubernetes probe) gets "
                            "only the status (Liveness); one with a valid token gets the whole report (Health); "
                            "a bad token gets 401. Stalled answers 503 either way.",
                responses={503: {"model": Health | Liveness, "description": "the pipeline is stalled"}})
    def health(request: Request, response: Response) -> Health | Liveness:
        backlog, lag = pipeline.backlog()
        status, detail = "ok", None
        if not pipeline.alive:
            status, detail = "stalled", "the pipeline thread has stopped"
        elif pipeline.consecutive_failures >= STALL_AFTER_FAILURES:
            status, detail = "stalled", f"the pipeline failed {pipeline.consecutive_failures} ticks in a row (see the log)"
        elif lag is not None and lag > LAG_ALERT_S:
            status, detail = "lagging", f"{backlog} traces due, the oldest for {lag:.0f} s"
        if status == "stalled":
            response.status_code = 503
        if PRINCIPAL_KEY not in request.scope:  # HttpGuard let a probe in without a token
            return Liveness(status=status)
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

    @router.get("/runs", response_model=list[RunSummary], tags=["runs"],
                summary="List runs, newest first; the X-Total-Count header counts all that match")
    def list_runs(response: Response, outcome: str | None = None,
                  service: str | None = Query(None, description="Runs whose service contains this text (any case)"),
                  name: str | None = Query(None, description="Runs whose name contains this text (any case)"),
                  q: str | None = Query(None, max_length=500,
                                        description="Runs whose id, task, answer or an agent's name contains this"),
                  termination: str | None = None,
                  agent: str | None = Query(None, description="Runs whose verdict (or review) blames this agent"),
                  since: float | None = Query(None, description="Runs started at or after (Unix seconds)"),
                  until: float | None = Query(None, description="Runs started before (Unix seconds)"),
                  limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_SQL_INT),
                  caller: Principal = Depends(request_principal)) -> list[dict]:
        filters = RunFilter(search=q, service=service, name=name, outcome=outcome, termination=termination,
                            agent=agent, since=since, until=until, only_service=caller.service)
        response.headers["X-Total-Count"] = str(store.count_runs(filters))
        return store.list_runs(filters, limit=limit, offset=offset)

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
        reviews = store.reviews(run_id=run_id)
        return RunDetail(trajectory=traj, attributions=store.attributions(run_id=run_id), job=store.job(run_id),
                         usage=RunUsage(**vars(store.run_usage(run_id))), review=reviews[0] if reviews else None)

    @router.get("/runs/{run_id}/spans", response_model=list[SpanOut], tags=["runs"],
                summary="The run's spans, decoded: tree links, times, status, LLM calls (model, messages, tokens, "
                        "cost) and tool calls")
    def get_run_spans(run_id: str, caller: Principal = Depends(request_principal)) -> list[SpanOut]:
        run_id, _ = find_run(run_id, caller)
        trace_id = store.run_trace(run_id)
        spans = [decode(data, service) for data, service in store.trace_spans(trace_id)] if trace_id else []
        return sorted((span_out(s) for s in spans), key=lambda s: (s.start, s.end))

    @router.post("/runs/{run_id}/review", response_model=Review, tags=["review"],
                 summary="Confirm the run's verdict, or correct its step and agent (a correction replaces the "
                         "verdict's lesson); service or admin tokens")
    def review_run(run_id: str, body: ReviewIn, caller: Principal = Depends(request_principal)) -> dict:
        if caller.scope == "read":
            raise Forbidden("this token is read-only; reviewing a verdict needs a service or admin token")
        run_id, traj = find_run(run_id, caller)
        verdicts = store.attributions(run_id=run_id)
        verdict = verdicts[-1] if verdicts else None
        review, lesson = judged(traj, verdict, body, caller.name)
        store.save_review(review, lesson)
        log.info("run.reviewed", run_id=run_id, confirmed=review["confirmed"], agent=review["agent"],
                 step=review["step"], reviewer=caller.name)
        return review

    @router.get("/reviewed", response_model=list[LabelledTrajectory], tags=["review"],
                summary="Reviewed failed runs as labelled data (the reviewer's agent and step), oldest review first")
    def list_reviewed(limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0, le=MAX_SQL_INT),
                      caller: Principal = Depends(request_principal)) -> list[LabelledTrajectory]:
        out = []
        for r in store.reviews(only_service=caller.service, limit=limit, offset=offset):
            traj = store.get_run(r["run_id"])
            if traj is not None:
                out.append(LabelledTrajectory(
                    id=r["run_id"], subset=f"reviewed/{r['service'] or 'unknown'}", trajectory=traj,
                    label=Label(agent=r["agent"], step=r["step"], reason=r["note"]),
                    tags={"review": "confirmed" if r["confirmed"] else "corrected", "reviewer": r["reviewer"]}))
        return out

    @router.get("/failures", response_model=FailureModes, tags=["runs"],
                summary="Verdicts of a time range grouped by blamed agent and by kind of error, with counts per bucket")
    def failure_modes(since: float | None = Query(None, description="Unix seconds; default: 7 days before until"),
                      until: float | None = Query(None, description="Unix seconds; default: now"),
                      buckets: int = Query(14, ge=1, le=200),
                      caller: Principal = Depends(request_principal)) -> FailureModes:
        until = time.time() if until is None else until
        since = until - DEFAULT_FAILURE_WINDOW_S if since is None else since
        if since >= until:
            raise HTTPException(400, f"since ({since}) must be before until ({until})")
        rows = store.failure_verdicts(since, until, only_service=caller.service)
        return group_failures(rows, since, until, buckets)

    @router.get("/runs/{run_id}/whowhen", tags=["runs"],
                summary="The run (by id or unique id prefix) in Who&When / TracerTraj JSON shape")
    def get_run_whowhen(run_id: str, caller: Principal = Depends(request_principal)) -> dict:
        from agenttrace.data.datasets import to_whowhen

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
