"""One worker process: dispatching jobs to handlers, their context, stats and heartbeats."""
