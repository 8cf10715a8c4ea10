"""A test app: tasks that record each run in Redis, and schedules read from SAMPLE_SCHEDULES."""
