"""One schedule when OBSERVED_EVERY_MS is set: `traced.work` at that interval."""

from __future__ import annotations

import os

from bullpen import ScheduledJob

_EVERY_MS = os.environ.get("OBSERVED_EVERY_MS")

scheduled_jobs = ([ScheduledJob(name="traced-tick", task_name="traced.work",
                                every_ms=int(_EVERY_MS), data={"tick": True})]
                  if _EVERY_MS else [])
