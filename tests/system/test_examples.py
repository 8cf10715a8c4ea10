"""The README's example app runs as documented: its schedules register and its task completes."""

from __future__ import annotations

from tests.helpers import REPO
from tests.helpers.processes import Proc, run_cli

EXAMPLES = REPO / "examples"


def test_example_app_registers_its_schedules_and_runs_a_task(env: dict[str, str]) -> None:
    app_env = {**env, "BULLPEN_APP": "myapp", "PYTHONPATH": str(EXAMPLES)}
    worker = Proc(["worker"], app_env)
    try:
        worker.wait_for("Scheduled job registered: digest-daily (0 2 * * *)")
        worker.wait_for("Scheduled job registered: cache-warm-every-30s (*/30 * * * * *)")
        enqueued = run_cli(["enqueue", "digest.send", "--data", '{"recipients": ["a@b.c"]}'],
                           app_env)
        assert enqueued.returncode == 0, enqueued.stderr
        worker.wait_for(f"Processing job {enqueued.stdout.strip()} of type digest.send")
        listed = run_cli(["schedules"], app_env)
        assert "digest-daily -> digest.send  [registered]" in listed.stdout
        assert "(Europe/Paris): At 02:00 AM" in listed.stdout
    finally:
        worker.signal()
        worker.wait()
