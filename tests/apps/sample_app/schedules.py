"""Schedules for tests, declared through the SAMPLE_SCHEDULES environment variable (JSON list)."""

from __future__ import annotations

import json
import os

from bullpen import ScheduledJob

scheduled_jobs = [ScheduledJob(**item) for item in json.loads(os.environ.get("SAMPLE_SCHEDULES",
                                                                               "[]"))]
