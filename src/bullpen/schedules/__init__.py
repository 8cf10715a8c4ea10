"""bullpen's own recurring jobs; an app adds its own in `<app>.schedules.scheduled_jobs`."""

from bullpen.definitions.schedule import ScheduledJob

scheduled_jobs: list[ScheduledJob] = [
    ScheduledJob(
        name="cleanup-exports-hourly",
        task_name="exports.cleanup",
        pattern="0 * * * *",  # every hour at minute 0
        data={},
    ),
]
