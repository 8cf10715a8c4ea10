"""rediss:// against a real TLS-only redis-server whose certificates a CA made by the test signed:
worker, CLI, client, web and doctor over verified TLS with client certificates; and every way
it can be misconfigured fails with a message naming the URL option to change."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.exceptions import RedisError

from bullpen import SyncClient, doctor
from bullpen.adapter import probe
from bullpen.errors import RedisUnavailableError
from bullpen.redis_tls import describe
from tests.helpers.processes import Proc, run_cli, running_worker
from tests.helpers.redis_server import private_redis
from tests.helpers.tls import HOST, Certificates, make_certificates, tls_redis
from tests.helpers.web import running_web

pytestmark = pytest.mark.topology

TOKEN = "tls-test-token-Vb7Qm2Lx9Rk4Tz8Wp3Nc6Hy5Jd1Gs0Fa"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CA = "ssl_ca_certs"
DIRTY = ("Traceback", "Worker error", "Missing lock", "Task exception was never retrieved")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_port(certs: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tls_redis(tmp_path_factory.mktemp("tls-redis"), certs) as port:
        yield port


def tls_url(port: int, certs: Certificates, *, host: str = HOST, ca: Path | None = None,
            client: bool = True) -> str:
    options = [f"ssl_ca_certs={ca}"] if ca is not None else []
    if client:
        options += [f"ssl_certfile={certs.client_cert}", f"ssl_keyfile={certs.client_key}"]
    return f"rediss://{host}:{port}/0?" + "&".join(options)


def env_with(offline_env: dict[str, str], url: str, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    """The test's environment (for processes and this process's clients) on `url`."""
    monkeypatch.setenv("WORKER_REDIS_URL", url)
    monkeypatch.setenv("WEB_AUTH_TOKEN", TOKEN)
    return {**offline_env, "WORKER_REDIS_URL": url, "WEB_AUTH_TOKEN": TOKEN}


def test_worker_cli_client_web_and_doctor_work_over_verified_tls(
        offline_env: dict[str, str], certs: Certificates, tls_port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(offline_env, tls_url(tls_port, certs, ca=certs.ca), monkeypatch)
    with running_worker(env) as worker:
        enqueued = run_cli(["enqueue", "health.check"], env)
        assert enqueued.returncode == 0, enqueued.stderr
        cli_job = enqueued.stdout.strip()
        client = SyncClient()
        try:
            job = client.enqueue("health.check", {})
            assert job.wait(timeout=15) is not None
            client.job(cli_job).wait(timeout=15)
            info = client.get_job(cli_job)
            assert info is not None and info.state == "completed"
        finally:
            client.close()
        listed = run_cli(["jobs", "--state", "completed"], env)
        assert listed.returncode == 0, listed.stderr
        assert cli_job in listed.stdout and job.id in listed.stdout
        with running_web(env) as (_web, base):
            ready = httpx.get(f"{base}/readyz", headers=ADMIN, timeout=10)
            assert ready.status_code == 200, ready.text
            assert all(check["ok"] for check in ready.json()["checks"].values()), ready.text
        checked = run_cli(["doctor"], env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"✓ redis: rediss://{HOST}:{tls_port}/0?ssl_ca_certs=" in checked.stdout
    assert f"Using Redis at rediss://{HOST}:{tls_port}/0" in worker.output
    assert not [line for line in worker.lines if any(text in line for text in DIRTY)]


def _refused_everywhere(env: dict[str, str], *expected: str) -> None:
    """CLI, doctor, the app's client and a worker all say what is wrong, in those words
    (`env` is this process's environment too)."""
    worker = Proc(["worker"], env)  # started first: it runs while the others do
    try:
        enqueued = run_cli(["enqueue", "health.check"], env)
        assert enqueued.returncode == 1
        found = doctor.render(doctor.run_checks())  # `bullpen doctor`'s text, in this process
        with pytest.raises(RedisUnavailableError) as raised:
            SyncClient().enqueue("health.check", {})
        worker.wait_for("is unreachable (")
    finally:
        worker.signal(signal.SIGTERM)
        worker.wait()
    for said in (enqueued.stderr, found, str(raised.value), worker.output):
        for text in expected:
            assert text in said, said


def test_verification_is_on_by_default(offline_env: dict[str, str], certs: Certificates,
                                       tls_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(offline_env, tls_url(tls_port, certs), monkeypatch)
    _refused_everywhere(env, "TLS certificate verification failed",
                        "add ssl_ca_certs=/path/to/ca.pem to WORKER_REDIS_URL")


def test_a_host_name_the_certificate_does_not_name_is_refused(
        offline_env: dict[str, str], certs: Certificates, tls_port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(offline_env, tls_url(tls_port, certs, host="127.0.0.1", ca=certs.ca),
                   monkeypatch)
    _refused_everywhere(env, "TLS certificate verification failed",
                        "not valid for '127.0.0.1'",
                        "connect by a host name the server's certificate names")


def test_a_server_that_requires_client_certificates_says_which_options_to_set(
        offline_env: dict[str, str], certs: Certificates, tls_port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(offline_env, tls_url(tls_port, certs, ca=certs.ca, client=False),
                   monkeypatch)
    _refused_everywhere(env, "the server refused the TLS connection",
                        "ssl_certfile=/path/to/client.pem&ssl_keyfile=/path/to/client.key")


async def test_a_scheme_that_does_not_match_the_port_is_explained(
        certs: Certificates, tls_port: int) -> None:
    plain_to_tls = f"redis://{HOST}:{tls_port}/0"
    with pytest.raises(RedisError) as raised:
        await probe(plain_to_tls)
    assert "if the server accepts only TLS, use a rediss:// URL" in describe(raised.value,
                                                                             plain_to_tls)
    with private_redis() as plain:
        tls_to_plain = f"rediss://127.0.0.1:{plain.port}/0?ssl_ca_certs={certs.ca}"
        with pytest.raises(RedisError) as raised:
            await probe(tls_to_plain, timeout_s=1)
    assert f"if port {plain.port} is the server's plain port, use redis://" in describe(
        raised.value, tls_to_plain)


@pytest.mark.parametrize("option", [CA, "ssl_certfile", "ssl_keyfile"])
def test_a_missing_certificate_file_stops_every_command_naming_the_option(
        offline_env: dict[str, str], certs: Certificates, tls_port: int, option: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = tls_url(tls_port, certs, ca=certs.ca)
    missing = tmp_path / "nowhere" / f"{option}.pem"
    current = {CA: certs.ca, "ssl_certfile": certs.client_cert,
               "ssl_keyfile": certs.client_key}[option]
    env = env_with(offline_env, url.replace(f"{option}={current}", f"{option}={missing}"),
                   monkeypatch)
    commands = [["enqueue", "health.check"], ["worker"], ["web"]][:3 if option == CA else 1]
    started = [Proc(command, env) for command in commands]
    for proc in started:
        assert proc.wait() == 2, proc.output
        assert f"{option} file '{missing}' does not exist" in proc.output
