"""The CLI through its real entry point: enqueue, jobs, job, schedules, worker --dev."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.helpers.processes import Proc, eventually, run_cli, running_worker, start_worker
from tests.helpers.redis_server import PrivateRedis


def test_enqueue_refuses_unknown_tasks_and_bad_json_and_writes_nothing(
        env: dict[str, str]) -> None:
    unknown = run_cli(["enqueue", "my.task"], env)
    assert unknown.returncode == 1
    assert "no handler registered for task 'my.task' (known: exports.cleanup" in unknown.stderr
    bad_json = run_cli(["enqueue", "health.check", "--data", "{oops"], env)
    assert bad_json.returncode == 2
    assert "--data is not valid JSON" in bad_json.stderr and "{oops" in bad_json.stderr
    too_big = run_cli(["enqueue", "health.check", "--data", json.dumps({"x": "a" * 2000})],
                      {**env, "JOB_MAX_DATA_BYTES": "1000"})
    assert too_big.returncode == 1 and "2008 bytes, over the limit of 1000" in too_big.stderr
    counts = json.loads(run_cli(["jobs", "--json"], env).stdout)["counts"]
    assert sum(counts.values()) == 0


def test_enqueue_options_and_job_details(env: dict[str, str]) -> None:
    result = run_cli(["enqueue", "health.check", "--data", '{"who": "ünïcode"}', "--delay",
                      "60000", "--job-id", "my-id", "--attempts", "5"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "my-id"
    details = json.loads(run_cli(["job", "my-id", "--json"], env).stdout)
    assert details["state"] == "delayed" and details["attempts_allowed"] == 5
    assert details["data"] == {"who": "ünïcode"} and details["delay_ms"] == 60000
    listed = run_cli(["jobs", "--state", "delayed"], env).stdout
    assert "delayed=1" in listed and "my-id" in listed
    missing = run_cli(["job", "nope"], env)
    assert missing.returncode == 1 and "no job 'nope' in queue" in missing.stderr
    bad_state = run_cli(["jobs", "--state", "done"], env)
    assert bad_state.returncode == 2 and "'done' is not a job state" in bad_state.stderr


def test_job_shows_result_duration_and_attempts_after_processing(env: dict[str, str]) -> None:
    worker = start_worker(env)
    try:
        job_id = run_cli(["enqueue", "health.check"], env).stdout.strip()
        eventually(lambda: "state: completed" in run_cli(["job", job_id], env).stdout, 15)
        shown = run_cli(["job", job_id], env).stdout
        assert "attempts_made: 1" in shown and "duration_ms:" in shown
        assert '"export_dir_writable": true' in shown  # JSON, not a Python repr
    finally:
        worker.signal()
        worker.wait()


def test_schedules_shows_declared_registered_and_next_fire_times(env: dict[str, str]) -> None:
    before = run_cli(["schedules", "--json"], env)
    [row] = json.loads(before.stdout)
    assert row["status"] == "missing" and row["description"] == "Every hour"
    assert len(row["next"]) == 3 and row["next"][0].endswith(":00:00+00:00")
    worker = start_worker(env)
    try:
        worker.wait_for("Schedules reconciled")
    finally:
        worker.signal()
        worker.wait()
    text = run_cli(["schedules"], env).stdout
    assert "cleanup-exports-hourly -> exports.cleanup  [registered]" in text
    assert "0 * * * * (UTC): Every hour" in text


def test_worker_dev_restarts_on_python_changes(app_env: dict[str, str], tmp_path: Path) -> None:
    app_dir = tmp_path / "devapp"
    app_dir.mkdir()
    (app_dir / "__init__.py").write_text('"""Dev-mode test app."""\n')
    (app_dir / "tasks.py").write_text("task_handlers = {}\n")
    env = {**app_env, "PYTHONPATH": str(tmp_path), "BULLPEN_APP": "devapp"}
    dev = Proc(["worker", "--dev"], env)
    try:
        dev.wait_for("Worker started and ready", timeout=20)
        time.sleep(0.5)
        (app_dir / "tasks.py").write_text("task_handlers = {}  # changed\n")
        eventually(lambda: dev.output.count("Worker started and ready") >= 2, 20)
    finally:
        dev.signal()
        dev.wait(30)


def test_commands_fail_fast_when_redis_does_not_answer(env: dict[str, str]) -> None:
    started = time.monotonic()
    result = run_cli(["jobs"], {**env, "WORKER_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"})
    assert result.returncode == 1
    assert "Redis at redis://:***@127.0.0.1:1/0 does not answer" in result.stderr
    assert "s3cret" not in result.stderr
    assert time.monotonic() - started < 15


def test_job_shows_a_failure_with_its_stack_trace(app_env: dict[str, str]) -> None:
    with running_worker(app_env):
        job_id = run_cli(["enqueue", "test.flaky", "--attempts", "1"], app_env).stdout.strip()
        eventually(lambda: "state: failed" in run_cli(["job", job_id], app_env).stdout, 15)
    shown = run_cli(["job", job_id], app_env).stdout
    assert "failed_reason: flaky failure on attempt 1" in shown
    trace = shown.split("stack trace:", 1)[1]
    assert "Traceback (most recent call last)" in trace
    assert "RuntimeError: flaky failure on attempt 1" in trace


def test_custom_job_ids_are_checked_as_node_does_and_an_existing_one_is_reported(
        env: dict[str, str]) -> None:
    for job_id, reason in (("263", "custom ids cannot be integers"),
                           ("a:b", "custom ids cannot contain ':'"),
                           ("meta", "is the name of one of the queue's own Redis keys")):
        refused = run_cli(["enqueue", "health.check", "--job-id", job_id], env)
        assert refused.returncode == 1 and reason in refused.stderr, refused.stderr
    first = run_cli(["enqueue", "health.check", "--job-id", "report-42", "--delay", "60000"], env)
    assert first.returncode == 0 and first.stderr == "" and first.stdout.strip() == "report-42"
    again = run_cli(["enqueue", "health.check", "--job-id", "report-42", "--data", '{"x": 1}'],
                    env)
    assert again.returncode == 0 and again.stdout.strip() == "report-42"
    assert "job 'report-42' already exists (delayed): nothing was added" in again.stderr
    details = json.loads(run_cli(["job", "report-42", "--json"], env).stdout)
    assert details["data"] == {}  # the first job, untouched
    assert "no job 'meta'" in run_cli(["job", "meta"], env).stderr


def test_enqueue_and_jobs_fail_within_a_second_when_redis_is_down(
        env: dict[str, str], tmp_path: Path) -> None:
    # A server that was there and stopped: the issue measured 4.6 s for `bullpen enqueue`.
    server = PrivateRedis(tmp_path / "redis", persistent=False).start()
    server.stop()
    down = {**env, "WORKER_REDIS_URL": server.url}
    for command in (["enqueue", "health.check"], ["jobs"]):
        started = time.monotonic()
        result = run_cli(command, down)
        elapsed_s = time.monotonic() - started
        assert result.returncode == 1, result.stderr
        assert f"Redis at {server.url} does not answer" in result.stderr
        assert elapsed_s < 1.0, f"bullpen {command[0]} took {elapsed_s:.2f} s to fail"


def test_jobs_job_and_schedules_cover_every_known_queue_or_the_one_named(
        env: dict[str, str]) -> None:
    default = env["WORKER_DEFAULT_QUEUE"]
    reports = f"{default}-reports"
    several = {**env, "WORKER_QUEUES": f"{default},{reports}"}
    for queue in (default, reports):  # job 1 of each queue, each queue numbering its own
        added = run_cli(["enqueue", "health.check", "--queue", queue, "--delay", "60000",
                         "--data", json.dumps({"on": queue})], several)
        assert added.stdout.strip() == "1", added.stderr
    listed = run_cli(["jobs", "--state", "delayed"], several).stdout.splitlines()
    assert [line.split(":")[0] for line in listed if line.startswith("queue ")] == [
        f"queue {default}", f"queue {reports}"]
    as_json = json.loads(run_cli(["jobs", "--state", "delayed", "--json"], several).stdout)
    assert [(view["queue"], view["counts"]["delayed"]) for view in as_json["queues"]] == [
        (default, 1), (reports, 1)]
    one = json.loads(run_cli(["jobs", "--queue", reports, "--json"], several).stdout)
    assert one["queue"] == reports and one["counts"]["delayed"] == 1
    both = run_cli(["job", "1"], several)
    assert both.returncode == 1
    assert f"job '1' exists in queues {default}, {reports}" in both.stderr
    assert "--queue" in both.stderr
    picked = json.loads(run_cli(["job", "1", "--queue", reports, "--json"], several).stdout)
    assert picked["data"] == {"on": reports} and picked["queue"] == reports
    rows = json.loads(run_cli(["schedules", "--json"], several).stdout)
    assert [(row["name"], row["queue"]) for row in rows] == [("cleanup-exports-hourly", default)]
    text = run_cli(["schedules"], several).stdout
    assert f"cleanup-exports-hourly -> exports.cleanup  [missing]  on queue {default}" in text
    # A queue no declaration names (a Node app's) is reached by name; a bad name is refused.
    elsewhere = run_cli(["jobs", "--queue", f"{default}-node"], several)
    assert elsewhere.returncode == 0 and "waiting=0" in elsewhere.stdout
    refused = run_cli(["jobs", "--queue", "a:b"], several)
    assert refused.returncode == 2 and "--queue: queue name 'a:b' cannot be used" in refused.stderr
