"""The collector's JSON API: runs, trajectories, verdicts, the feedback long-poll, lessons, health."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from agenttrace.models import Attribution, Lesson, Trajectory
from agenttrace_collector.auth import Principal, request_principal
from agenttrace_collector.ingest import IngestWriter
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


class RunDetail(BaseModel):
    trajectory: Trajectory
    attributions: list[Attribution]


class FeedbackBatch(BaseModel):
    attributions: list[Attribution]
    cursor: int


class Health(BaseModel):
    status: str
    committed_spans: int
    attributor: str | None


def api_router(store: Store, writer: IngestWriter, attributor_name: str | None) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/health", response_model=Health, tags=["meta"])
    def health() -> Health:
        return Health(status="ok", committed_spans=writer.committed_spans, attributor=attributor_name)

    @router.get("/runs", response_model=list[RunSummary], tags=["runs"], summary="List runs, newest first")
    def list_runs(outcome: str | None = None, service: str | None = None, name: str | None = None,
                  limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0),
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
        return RunDetail(trajectory=traj, attributions=store.attributions(run_id=run_id))

    @router.get("/runs/{run_id}/whowhen", tags=["runs"],
                summary="The run (by id or unique id prefix) in Who&When / TracerTraj JSON shape")
    def get_run_whowhen(run_id: str, caller: Principal = Depends(request_principal)) -> dict:
        from agenttrace.datasets import to_whowhen

        run_id, traj = find_run(run_id, caller)
        verdicts = store.attributions(run_id=run_id)
        return to_whowhen(traj, None) | ({"attribution": verdicts[-1].model_dump()} if verdicts else {})

    @router.get("/feedback", response_model=FeedbackBatch, tags=["feedback"],
                summary="Long-poll verdicts after a cursor (the last seq seen)")
    async def feedback(after: int = Query(0, ge=0), service: str | None = None,
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
