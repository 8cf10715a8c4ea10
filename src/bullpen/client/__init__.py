"""The app-facing API: `Client` (asyncio) and `SyncClient` to enqueue, wait and export."""

from bullpen.client.app_exports import Exports
from bullpen.client.async_client import Client
from bullpen.client.job import Job, JobInfo, JobSpec, JobState
from bullpen.client.sync_client import SyncClient, SyncExports, SyncJob
from bullpen.client.task_function import TaskFunction, task

__all__ = ["Client", "Exports", "Job", "JobInfo", "JobSpec", "JobState", "SyncClient",
           "SyncExports", "SyncJob", "TaskFunction", "task"]
