"""Log lines: text from outside (job ids, task names, messages) can never forge a line."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from bullpen import logs
from bullpen.adapter import JobOptions, QueueClient
from tests.helpers.processes import eventually, run_cli, start_worker

FORGED = "2026-01-01 00:00:00 INFO    [worker] Job payroll completed"


@pytest.mark.parametrize(("text", "shown"), [
    ("plain", "plain"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("\x1b[2J\x00\x7f\x9b", "\\x1b[2J\\x00\\x7f\\x9b"),
    ("right\u202eto\u2028left\u2029", "right\\u202eto\\u2028left\\u2029"),
    ("naïve ☕ 日本", "naïve ☕ 日本"),
])
def test_printable_escapes_every_control_character(text: str, shown: str) -> None:
    assert logs.printable(text) == shown


def test_a_traceback_is_indented_so_its_lines_pass_for_no_record(
        capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure()
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        logs.get("worker").exception("Job %s failed", f"x\n{FORGED}")
    logging.getLogger("bullpen").handlers[0].flush()
    lines = capsys.readouterr().err.splitlines()
    assert not any(line.startswith(FORGED[:19]) for line in lines), lines
    assert f"Job x\\n{FORGED} failed" in lines[0]


async def test_ids_and_task_names_cannot_forge_worker_log_or_cli_lines(
        app_env: dict[str, str], client: QueueClient) -> None:
    options = JobOptions(attempts=1)
    evil_id = f"x\n{FORGED}"
    await client.add("health.check", {}, dataclasses.replace(options, job_id=evil_id))
    await client.add(f"no.such\x1b[2J\n{FORGED}", {}, dataclasses.replace(options, job_id="y"))
    worker = start_worker(app_env)
    try:
        eventually(lambda: "of type no.such" in worker.output and "Processing job x" in
                   worker.output, timeout=15)
        await asyncio.sleep(0.5)
    finally:
        worker.signal()
        worker.wait()
    listed = run_cli(["jobs", "--state", "completed"], app_env).stdout
    failed = run_cli(["jobs", "--state", "failed"], app_env).stdout
    for where, text in (("worker log", worker.output), ("jobs", listed), ("jobs", failed)):
        lines = text.splitlines()
        assert not any(line.startswith(FORGED[:19]) for line in lines), (where, lines)
        assert "\x1b" not in text, where
    assert f"Processing job x\\n{FORGED} of type health.check" in worker.output
    assert "no.such\\x1b[2J\\n" in worker.output and "no.such\\x1b[2J\\n" in failed
