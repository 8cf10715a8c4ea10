"""bullpen's side-by-side benchmarks against Node BullMQ (run with `python -m bench`)."""
