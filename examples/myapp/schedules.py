"""The app's recurring jobs; bullpen adds them to its own cleanup-exports-hourly."""

from bullpen import ScheduledJob

scheduled_jobs = [
    ScheduledJob(
        name="digest-daily",
        task_name="digest.send",
        pattern="0 2 * * *",  # daily at 2 AM
        tz="Europe/Paris",
        data={"recipients": ["team@example.com"]},
    ),
    ScheduledJob(
        name="cache-warm-every-30s",
        task_name="cache.warm",
        pattern="*/30 * * * * *",  # 6 fields: seconds first, as in Node BullMQ
        data={"keys": 100},
    ),
]
