"""Schedules for the topology tests, from TOPOLOGY_SCHEDULES (a JSON list of ScheduledJob)."""

from __future__ import annotations

import json
import os

from bullpen import ScheduledJob

scheduled_jobs = [ScheduledJob(**item)
                  for item in json.loads(os.environ.get("TOPOLOGY_SCHEDULES", "[]"))]
