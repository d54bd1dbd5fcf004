"""Failure modes: a time range's verdicts grouped by the agent they blame and by the kind of error, with a
count per time bucket (the trend), so recurring failures show at a glance.

The kind of error is how the run ended (its termination label); a run that completed with a wrong answer is
``wrong_answer``. The blamed agent is the reviewer's when a person corrected the verdict.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

DEFAULT_FAILURE_WINDOW_S = 7 * 24 * 3600.0
UNDECIDED = "(undecided)"


class FailureGroup(BaseModel):
    key: str
    count: int
    trend: list[int] = Field(description="verdicts per bucket, oldest bucket first")


class FailureModes(BaseModel):
    since: float
    until: float
    bucket_s: float
    total: int
    by_agent: list[FailureGroup] = Field(description="most frequent first")
    by_kind: list[FailureGroup]


def error_kind(termination: str) -> str:
    return "wrong_answer" if termination == "completed" else termination


def group_failures(rows: list[tuple], since: float, until: float, buckets: int) -> FailureModes:
    """``rows`` are (blamed agent or None, termination, verdict time) in [since, until)."""
    bucket_s = (until - since) / buckets
    by_agent: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    for agent, termination, at in rows:
        bucket = min(int((at - since) / bucket_s), buckets - 1)
        by_agent[agent or UNDECIDED][bucket] += 1
        by_kind[error_kind(termination)][bucket] += 1
    return FailureModes(since=since, until=until, bucket_s=bucket_s, total=len(rows),
                        by_agent=_ranked(by_agent), by_kind=_ranked(by_kind))


def _ranked(groups: dict[str, list[int]]) -> list[FailureGroup]:
    ranked = sorted(groups.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return [FailureGroup(key=key, count=sum(trend), trend=trend) for key, trend in ranked]
