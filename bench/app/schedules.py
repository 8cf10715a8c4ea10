"""The cron benchmark's 1-second schedule, declared only when BENCH_CRON=1."""

from __future__ import annotations

import os

from bullpen import ScheduledJob

scheduled_jobs = (
    [ScheduledJob(name="bench-tick", task_name="bench.lateness", pattern="* * * * * *")]
    if os.environ.get("BENCH_CRON") == "1" else []
)
