"""The README's "First run" (and docs/scaling.md's "Try it") runs as written: its shell blocks in
order, from the root of a fresh copy of the repository, in an environment holding only what the
text sets.

A block whose last command runs until stopped (`make worker`, `bullpen worker`) plays the first
terminal: it is started, watched for its documented lines, and stopped with Ctrl-C (SIGINT to
its process group) when the text starts the next one. Every other block plays the second
terminal and must exit 0. Each ```text block lists lines the output before it must contain.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from bullpen import embedded
from tests.helpers import REPO

LONG_RUNNING = re.compile(r"^(make worker|bullpen worker)\b")
READY_TIMEOUT_S = 60


def _first_run() -> list[tuple[str, str]]:
    """(kind, body) of each fenced block of the README's First run section, in order."""
    return _section_blocks("README.md", "\n## First run\n", "\n## ")


def _section_blocks(document: str, heading: str, end: str) -> list[tuple[str, str]]:
    text = (REPO / document).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split(end, 1)[0]
    return re.findall(r"```(bash|text)\n(.*?)```", section, re.S)


def _fresh_copy(target: Path) -> None:
    """The repository's files as a clone has them, with this checkout's .venv (installed by
    `make install`, which `make worker` would otherwise run for minutes)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO / ".venv")
    # Older than the installed bullpen, so make sees .venv as up to date.
    os.utime(target / "pyproject.toml", (0, 0))


class Terminal:
    """One long-running block: a bash process in its own group, output collected."""

    def __init__(self, body: str, cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(["bash", "-c", body], cwd=cwd, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def ctrl_c(self) -> None:
        os.killpg(self.popen.pid, signal.SIGINT)
        self.popen.wait(60)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)


def _expect(lines: str, output: str, deadline_s: float | None = None) -> None:
    """Each documented line is part of a line of `output` (waiting for it until the deadline)."""
    wanted = [line for line in lines.splitlines() if line.strip()]
    for line in wanted:
        assert any(line in seen for seen in output.splitlines()), (
            f"README line {line!r} not in the output:\n{output}")


def _wait_for(terminal: Terminal, lines: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            _expect(lines, terminal.output)
            return
        except AssertionError:
            assert terminal.popen.poll() is None, terminal.output
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_the_first_run_section_works_as_written(tmp_path: Path) -> None:
    blocks = _first_run()
    assert [kind for kind, _ in blocks].count("bash") >= 4
    _walk(blocks, tmp_path, {"health.check", "digest.send"})


@pytest.mark.timeout(300)
def test_the_several_queues_walkthrough_works_as_written(tmp_path: Path) -> None:
    blocks = _section_blocks("docs/scaling.md", "\n### Try it\n", "\n## ")
    assert [kind for kind, _ in blocks].count("bash") == 2
    _walk(blocks, tmp_path, {"report.build", "digest.send"})


def test_the_scaling_docs_quote_the_example_app_verbatim() -> None:
    text = (REPO / "docs" / "scaling.md").read_text(encoding="utf-8")
    quoted = re.findall(r"```python\n# (examples/\S+\.py)\n(.*?)```", text, re.S)
    assert quoted
    for path, block in quoted:
        assert block.strip() in (REPO / path).read_text(encoding="utf-8"), path


def _finished_jobs(var_dir: Path) -> tuple[dict[str, list[str]], list[str]]:
    """From the embedded server: task name → return values of its completed jobs, on every
    queue; and the failed reasons of every failed job."""
    url = embedded.status(var_dir).url
    assert url, f"no embedded server under {var_dir}"
    connection = redis.Redis.from_url(url, decode_responses=True)
    completed: dict[str, list[str]] = {}
    failed: list[str] = []
    try:
        for key in connection.scan_iter(match="bull:*:completed", _type="zset"):
            prefix = str(key).removesuffix("completed")
            for job_id in connection.zrange(key, 0, -1):
                name, value = connection.hmget(f"{prefix}{job_id!s}", ["name", "returnvalue"])
                completed.setdefault(str(name), []).append(str(value))
        for key in connection.scan_iter(match="bull:*:failed", _type="zset"):
            prefix = str(key).removesuffix("failed")
            failed += [str(connection.hget(f"{prefix}{job_id!s}", "failedReason"))
                       for job_id in connection.zrange(key, 0, -1)]
    finally:
        connection.close()
    return completed, failed


def _wait_completed(var_dir: Path, tasks: set[str]) -> None:
    """Each task the text enqueued completed with its handler's return value; none failed."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        completed, failed = _finished_jobs(var_dir)
        assert not failed, failed
        done = {name for name, values in completed.items()
                if any(value not in ("None", "null") for value in values)}
        if tasks <= done or time.monotonic() > deadline:
            assert tasks <= done, completed
            return
        time.sleep(0.2)


def _walk(blocks: list[tuple[str, str]], tmp_path: Path, tasks: set[str]) -> None:
    """Each bash block in a terminal of its own (a long-running one stays up as the first
    terminal), each text block checked against the output before it; then each of `tasks`
    has completed, with a return value."""
    project = tmp_path / "bullpen"
    project.mkdir()
    _fresh_copy(project)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    terminal: Terminal | None = None
    stopped: list[Terminal] = []
    output = ""
    try:
        for kind, body in blocks:
            if kind == "text":
                if terminal is not None and not output:
                    _wait_for(terminal, body)
                else:
                    _expect(body, output)
                continue
            commands = [line for line in body.splitlines() if line.strip()]
            if LONG_RUNNING.match(commands[-1]):
                if terminal is not None:
                    terminal.ctrl_c()
                    stopped.append(terminal)
                terminal, output = Terminal(body, project, env), ""
                continue
            result = subprocess.run(["bash", "-e", "-c", body], cwd=project, env=env,
                                    capture_output=True, text=True, timeout=120, check=False)
            assert result.returncode == 0, (body, result.stdout, result.stderr)
            output = result.stdout + result.stderr
        _wait_completed(project / "var", tasks)
    finally:
        if terminal is not None:
            terminal.ctrl_c()
            stopped.append(terminal)
        for each in stopped:
            each.kill()
        embedded.stop(project / "var")
    for each in stopped:  # Ctrl-C drained each worker: it stopped cleanly
        assert "Worker stopped" in each.output, each.output
        assert "Traceback" not in each.output, each.output
    assert len(list((project / "var").glob("redis"))) == 1
    assert not (project / "examples" / "var").exists()  # one embedded server, not two
