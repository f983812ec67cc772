"""What a worker process says about itself every ``[worker] heartbeat_seconds``: the record
``/readyz`` counts and the operators' status lists. Written by the worker, read by the web
(``service/store/heartbeats.py``); it crosses processes, so it is a typed model."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_LISTED_JOBS = 50
FRESH_PERIODS = 2  # a beat is fresh while younger than this many of its periods
KEEP_PERIODS = 12  # a silent worker's last beat stays readable this long (then it expires)


class WorkerHeartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="host-pid-start: unique per worker process")
    host: str
    pid: int
    started: AwareDatetime
    beat: AwareDatetime = Field(description="when this record was written")
    period_seconds: float = Field(description="how often the worker beats; fresh while younger than twice this")
    jobs: list[str] = Field([], description=f"ids of the jobs running now (the first {MAX_LISTED_JOBS})")
    jobs_running: int = 0
    jobs_done: int = 0
    jobs_failed: int = 0
    version: str = ""

    def age(self, now: datetime) -> timedelta:
        return now - self.beat

    def fresh(self, now: datetime) -> bool:
        return self.age(now) <= timedelta(seconds=FRESH_PERIODS * self.period_seconds)

    def ttl_seconds(self) -> int:
        """How long the record is kept after this beat (long enough to show a worker that went silent)."""
        return max(30, int(KEEP_PERIODS * self.period_seconds))
