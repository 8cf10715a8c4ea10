"""Every bad input the issue lists, in one table: the message names the thing, shows the value
(never a secret or a token), and says how to fix it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import time_machine

from bullpen.adapter import connection_kwargs
from bullpen.definitions.schedule import ScheduledJob, validate
from bullpen.errors import BullpenError
from bullpen.exports import naming
from bullpen.exports.cleanup import run_cleanup
from bullpen.exports.service import ExportService
from bullpen.exports.tokens import TokenSigner, parse_secrets
from bullpen.loader import load_registry
from bullpen.producer import check_data
from bullpen.settings import Settings, load_settings
from bullpen.web import create_app
from tests.helpers.processes import run_cli
from tests.helpers.redis_server import free_port

SECRET = "bad-input-Lp3Xq8Rz1Wv6Tk9Nm2Hc5Jb7Fd4Gs0Ya"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPORT_ID = "1740830400000-0123456789abcdef"
REGISTRY = load_registry(None)


@dataclass
class Ctx:
    """What a case may use: the test's environment and its scratch directory."""

    env: dict[str, str]
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def cli(self, args: list[str], **overrides: str) -> str:
        """stderr of a `bullpen` command that must fail (exit 1 or 2)."""
        result = run_cli(args, {**self.env, **overrides})
        assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)
        return result.stderr

    def cleanup_output(self, entry: Callable[[Path], None]) -> str:
        """stdout of `bullpen cleanup-exports` over an export dir holding one odd entry."""
        directory = Path(self.env["EXPORT_DIR"])
        directory.mkdir(mode=0o700, exist_ok=True)
        entry(directory)
        result = run_cli(["cleanup-exports"], self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def settings(self) -> Settings:
        return load_settings()  # the env fixture put the test's values in the environment


def raised(action: Callable[[], object]) -> str:
    """The message of the BullpenError `action` raises."""
    with pytest.raises(BullpenError) as caught:
        action()
    return str(caught.value)


def schedule_error(**fields: object) -> Callable[[Ctx], str]:
    item = ScheduledJob(**{"name": "nightly", "task_name": "health.check",
                           "pattern": "0 2 * * *", **fields})  # type: ignore[arg-type]
    return lambda _ctx: raised(lambda: validate([item], REGISTRY))


def token_error(token: Callable[[TokenSigner], str], at: datetime = NOW) -> Callable[[Ctx], str]:
    def produce(_ctx: Ctx) -> str:
        signer = TokenSigner([SECRET])
        with time_machine.travel(at, tick=False):
            issued = token(signer)
        with time_machine.travel(NOW, tick=False):
            return raised(lambda: signer.decode(issued))
    return produce


def _sign(signer: TokenSigner, expires_in: timedelta = timedelta(minutes=15),
          purpose: str = "export-download") -> str:
    return signer.sign(EXPORT_ID, datetime.now(UTC) + expires_in, purpose)


def _signed_list(signer: TokenSigner) -> str:
    return str(signer._serializer.dumps(["not", "an", "object"]))


def _gone_export(ctx: Ctx) -> str:
    service = ExportService(ctx.settings())
    export, _ = service.create("report.csv", b"a,b\n")
    token = service.issue_token(export).token
    service.delete(export.id)
    return raised(lambda: service.verify(token))


def _bad_lifetime(ctx: Ctx) -> str:
    service = ExportService(ctx.settings())
    export, _ = service.create("report.csv", b"a,b\n")
    return raised(lambda: service.issue_token(export, expires_in_minutes=0))


def _cleanup_error(prepare: Callable[[Path], None], **kwargs: object) -> Callable[[Ctx], str]:
    def produce(ctx: Ctx) -> str:
        directory = Path(ctx.env["EXPORT_DIR"])
        prepare(directory)

        async def go() -> None:
            connection = aioredis.Redis(**connection_kwargs(ctx.env["WORKER_REDIS_URL"]))
            try:
                await run_cleanup(ctx.settings(), connection, **kwargs)  # type: ignore[arg-type]
            finally:
                await connection.aclose()

        return raised(lambda: asyncio.run(go()))
    return produce


def _locked_cleanup(ctx: Ctx) -> str:
    settings = ctx.settings()
    Path(ctx.env["EXPORT_DIR"]).mkdir(exist_ok=True)
    key = settings.keyspace.cleanup_lock

    async def go() -> None:
        connection = aioredis.Redis(**connection_kwargs(ctx.env["WORKER_REDIS_URL"]))
        try:
            await connection.set(key, "someone-else", px=30_000)
            await run_cleanup(settings, connection)
        finally:
            await connection.aclose()

    return raised(lambda: asyncio.run(go()))


def _symlinked_dir(directory: Path) -> None:
    real = directory.parent / "real-exports"
    real.mkdir()
    directory.symlink_to(real)


def _file_not_dir(directory: Path) -> None:
    directory.write_text("not a directory")


def _symlink_entry(directory: Path) -> None:
    (directory / naming.data_name(EXPORT_ID)).symlink_to("/etc/passwd")


def _foreign_entry(directory: Path) -> None:
    (directory / "holiday-photo.jpg").write_bytes(b"\xff\xd8")


def _dead_redis(ctx: Ctx) -> str:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    message = ctx.cli(["jobs"], WORKER_REDIS_URL=url)
    assert "hunter2" not in message
    return message


def _settings_error(ctx: Ctx, variable: str, value: str) -> str:
    ctx.monkeypatch.setenv(variable, value)
    return raised(load_settings)


@dataclass(frozen=True)
class Case:
    """`produce` returns the message; `names`, `shows`, `fix` must each appear in it.

    `shows` is None where the value must not be echoed (secrets, tokens); `fix` is None where
    the input is refused on purpose and there is nothing to fix (cleanup skipping an entry).
    """

    id: str
    produce: Callable[[Ctx], str]
    names: str
    shows: str | None
    fix: str | None
    hidden: str | None = None  # a secret that must not appear, not even in part


KNOWN = "known: exports.cleanup, exports.create, health.check"
CASES = [
    # Tasks and job data
    Case("unknown task (CLI)", lambda c: c.cli(["enqueue", "health.chek"]),
         "no handler registered for task", "'health.chek'", "did you mean 'health.check'?"),
    Case("unknown task, nothing close", lambda c: c.cli(["enqueue", "zzz"]),
         "no handler registered for task", "'zzz'", "tasks.task_handlers"),
    Case("malformed JSON (CLI)", lambda c: c.cli(["enqueue", "health.check", "--data", "{oops"]),
         "--data is not valid JSON", "(got '{oops')", """example: --data '{"key": "value"}'"""),
    Case("data not JSON-serialisable",
         lambda _c: raised(lambda: check_data("health.check", {"ids": {1, 2}}, 1000)),
         "job data for task 'health.check' is not JSON-serialisable", "Object of type set",
         "pass only dicts, lists, strings"),
    Case("data with NaN", lambda _c: raised(lambda: check_data("t", {"x": float("nan")}, 1000)),
         "job data for task 't' is not JSON-serialisable", "Out of range float values",
         "finite numbers"),
    Case("data over the size limit (CLI)",
         lambda c: c.cli(["enqueue", "health.check", "--data", json.dumps({"x": "a" * 200})],
                         JOB_MAX_DATA_BYTES="100"),
         "job data for task 'health.check'",
         "208 bytes, over the limit of 100 (JOB_MAX_DATA_BYTES)",
         "store large payloads elsewhere and pass a reference"),
    Case("data nested too deeply",
         lambda _c: raised(lambda: check_data("t", json.loads("[" * 70 + "]" * 70), 10**6)),
         "job data for task 't'", "nested 70 levels deep, over the limit of 64", "flatten it"),
    Case("job id an integer (CLI)", lambda c: c.cli(["enqueue", "health.check", "--job-id", "263"]),
         "custom ids cannot be integers", "'263'", "add a prefix, e.g. 'report-263'"),
    Case("job id with ':' (CLI)", lambda c: c.cli(["enqueue", "health.check", "--job-id", "a:b"]),
         "custom ids cannot contain ':'", "'a:b'", "use another separator, e.g. 'a-b'"),
    Case("job id a queue key (CLI)",
         lambda c: c.cli(["enqueue", "health.check", "--job-id", "meta"]),
         "the name of one of the queue's own Redis keys", "'meta'", "choose another id"),
    # Schedules
    Case("invalid cron value", schedule_error(pattern="61 2 * * *"),
         "Schedule 'nightly': invalid cron pattern", "'61 2 * * *'", "e.g. '0 * * * *' for hourly"),
    Case("invalid cron field count", schedule_error(pattern="0 2 * * * * *"),
         "Schedule 'nightly': invalid cron pattern", "got 7",
         "6 fields put seconds first, as in '0 15 3 * * *'"),
    Case("unknown time zone", schedule_error(tz="Europe/Pariss"),
         "Schedule 'nightly': unknown time zone", "'Europe/Pariss'",
         "expected an IANA name such as 'Europe/Paris'"),
    Case("schedule naming an unknown task", schedule_error(task_name="report.daily"),
         "Schedule 'nightly': unknown task", "'report.daily'", KNOWN),
    Case("bad schedule stops the worker (CLI)",
         lambda c: c.cli(["worker"], SAMPLE_SCHEDULES=json.dumps(
             [{"name": "tick", "task_name": "test.record", "pattern": "* * * *"}])),
         "Schedule 'tick': invalid cron pattern", "'* * * *'", "expected 5 or 6 fields"),
    # Download tokens (never echoed: a token is a credential)
    Case("token: empty", token_error(lambda s: ""), "download token rejected", "empty token",
         "ask for a new download link"),
    Case("token: garbage", token_error(lambda s: "not-a-token"), "download token rejected",
         "bad signature", "ask for a new download link"),
    Case("token: tampered", token_error(lambda s: _sign(s)[:-2] + "xx"),
         "download token rejected", "bad signature", "ask for a new download link"),
    Case("token: other secret", token_error(lambda s: _sign(TokenSigner(["o" * 40]))),
         "download token rejected", "bad signature", "ask for a new download link"),
    Case("token: expired", token_error(_sign, at=NOW - timedelta(minutes=20)),
         "download token expired at", "2025-03-01T11:55:00+00:00", "ask for a fresh download link"),
    Case("token: wrong purpose", token_error(lambda s: _sign(s, purpose="password-reset")),
         "download token rejected: wrong purpose", "'password-reset' (expected 'export-download')",
         "ask for a new download link"),
    Case("token: issued in the future", token_error(_sign, at=NOW + timedelta(hours=1)),
         "download token rejected: issued in the future", "2025-03-01T13:00:00+00:00",
         "check the clocks of the signing and verifying hosts"),
    Case("token: payload not an object", token_error(_signed_list),
         "download token rejected", "malformed payload (not an object)",
         "ask for a new download link"),
    Case("token for a deleted export", _gone_export, "export '", "does not exist",
         "create it again"),
    Case("token lifetime not positive", _bad_lifetime, "expires_in_minutes", "=0",
         "expected minutes > 0"),
    # Secrets (never echoed, only their problem)
    Case("secret: empty", lambda _c: raised(lambda: parse_secrets("")),
         "EXPORT_TOKEN_SECRET", "is empty", "generate one with: python -c"),
    Case("secret: placeholder", lambda _c: raised(lambda: parse_secrets("your-secret-here")),
         "EXPORT_TOKEN_SECRET", "still the placeholder 'your-secret-here'", "replace it"),
    Case("secret: too short", lambda _c: raised(lambda: parse_secrets("short-secret")),
         "EXPORT_TOKEN_SECRET", "is 12 bytes, shorter than the 32 required", "generate one"),
    Case("secret: rotated list with a placeholder",
         lambda _c: raised(lambda: parse_secrets(f"{SECRET},your-secret-here")),
         "EXPORT_TOKEN_SECRET entry 2/2", "placeholder", "replace it"),
    Case("placeholder secret stops the worker (CLI)",
         lambda c: c.cli(["worker"], EXPORT_TOKEN_SECRET="your-secret-here"),
         "EXPORT_TOKEN_SECRET", "still the placeholder", "replace it"),
    # Export cleanup
    Case("cleanup: export dir is a symlink", _cleanup_error(_symlinked_dir),
         "export directory", "is a symlink (to ", "point EXPORT_DIR at the real directory"),
    Case("cleanup: export dir missing", _cleanup_error(lambda d: None),
         "export directory", "does not exist", "create it (mode 0700) or fix EXPORT_DIR"),
    Case("cleanup: export dir is a file", _cleanup_error(_file_not_dir),
         "export directory", "is not a directory", "fix EXPORT_DIR"),
    Case("cleanup: negative age", _cleanup_error(lambda d: d.mkdir(), older_than_hours=-1),
         "older_than_hours", "=-1", "leave it out to use EXPORT_MAX_FILE_AGE_HOURS"),
    Case("cleanup: negative age (CLI)",
         lambda c: c.cli(["cleanup-exports", "--older-than", "-1"]),
         "--older-than", "-1:", "expected a number of hours >= 0"),
    Case("cleanup: another run holds the lock", _locked_cleanup,
         "another export cleanup is running", ":bullpen:cleanup:lock", "this run was skipped"),
    Case("cleanup: symlink entry", lambda c: c.cleanup_output(_symlink_entry),
         "skipped 1: symlink (never followed)", f"{naming.data_name(EXPORT_ID)}: symlink", None),
    Case("cleanup: foreign file", lambda c: c.cleanup_output(_foreign_entry),
         "skipped 1: foreign file (not named by bullpen)", "holiday-photo.jpg: foreign", None),
    # Settings and Redis
    Case("setting: not an integer", lambda c: _settings_error(c, "WORKER_CONCURRENCY", "lots"),
         "WORKER_CONCURRENCY", "='lots'", "see .env.example"),
    Case("setting: out of range", lambda c: _settings_error(c, "WORKER_SHUTDOWN_TIMEOUT_S", "-1"),
         "WORKER_SHUTDOWN_TIMEOUT_S", "='-1': Input should be greater than or equal to 0",
         "Fix these variables"),
    Case("setting: not one of the choices", lambda c: _settings_error(c, "LOG_LEVEL", "LOUD"),
         "LOG_LEVEL", "='LOUD'", "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    Case("setting: wrong type (CLI)", lambda c: c.cli(["jobs"], WORKER_BACKOFF_TYPE="linear"),
         "WORKER_BACKOFF_TYPE", "='linear'", "Input should be 'exponential' or 'fixed'"),
    Case("Redis URL with an unknown scheme",
         lambda _c: raised(lambda: connection_kwargs("http://127.0.0.1:6379")),
         "Redis URL: unsupported scheme", "'http'", "e.g. redis://localhost:6379/0"),
    Case("Redis URL that does not answer (CLI)", _dead_redis,
         "Redis at redis://:***@127.0.0.1:", "does not answer",
         "check WORKER_REDIS_URL and that the server runs"),
]


def _http(method: str, path: str, headers: dict[str, str], settings: dict[str, object],
          times: int = 1) -> Callable[[Ctx], str]:
    """Status and body of the last of `times` identical requests to the dashboard app."""

    def produce(_ctx: Ctx) -> str:
        async def go() -> str:
            app = create_app(Settings(**settings))  # type: ignore[arg-type]
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport,
                                             base_url="http://localhost") as web:
                    for _ in range(times):
                        response = await web.request(method, path, headers=headers, json={})
            finally:
                await app.state.web.client.close()  # no lifespan runs under ASGITransport
            framing = response.headers.get("content-security-policy", "")
            return f"{response.status_code} {response.text} [CSP: {framing}]"
        return asyncio.run(go())
    return produce


def _foreign_name_with_newline(directory: Path) -> None:
    (directory / (naming.data_name(EXPORT_ID) + "\n")).write_bytes(b"not bullpen's")


def _someone_elses_export(directory: Path) -> None:
    path = directory / naming.data_name(EXPORT_ID)
    path.write_bytes(b"theirs")
    os.chown(path, 65534, 65534)


def _empty_file_range(ctx: Ctx) -> str:
    _, token = ExportService(ctx.settings()).create("empty.csv", b"")
    return _http("GET", f"/exports/{token}", {"range": "bytes=-5"}, NO_AUTH)(ctx)


def _content_type_with_crlf(ctx: Ctx) -> str:
    service = ExportService(ctx.settings())
    return raised(lambda: service.create("r.csv", b"a\n", content_type="text/csv\r\nX-Evil: 1"))


NO_AUTH: dict[str, object] = {"web_allow_no_auth": True}
WITH_TOKEN: dict[str, object] = {"web_auth_token": "web-token-Hq7Zt2Lm9Xr4Wc6Np1Vb8Ks3Jd5Fg0Ye",
              "web_metrics_token": "metrics-Rk4Vz8Qp2Lx6Tm1Wn9Hb3Jc7Fd5Gs0Ya"}
HIDDEN = "se/cr#et?pw"
# The audit's attacks (issue #11), each refused with a message that names what and says how.
CASES += [
    # Redis URLs: the value is shown redacted, the password never, not even a part of it
    Case("Redis URL without a scheme stops the worker (CLI)",
         lambda c: c.cli(["worker"], WORKER_REDIS_URL="localhost:6379"),
         "WORKER_REDIS_URL='localhost:6379'", "no scheme", "e.g. redis://localhost:6379/0"),
    Case("Redis URL with a bad port stops the web (CLI)",
         lambda c: c.cli(["web"], WORKER_REDIS_URL="redis://h:notaport/0"),
         "WORKER_REDIS_URL='redis://h:notaport/0'", "the port is not a number",
         "e.g. redis://localhost:6379/0"),
    Case("Redis URL: unencoded / # ? in the password and a bad port (CLI)",
         lambda c: c.cli(["jobs"], WORKER_REDIS_URL=f"redis://:{HIDDEN}@h:notaport/0"),
         "WORKER_REDIS_URL='redis://***@h:notaport/0'", "the port is not a number",
         "percent-encode / # ? @ %", hidden="cr#e"),
    Case("Redis URL: ?password= that does not answer (CLI)",
         lambda c: c.cli(["jobs"], WORKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
                                                   f"?password={HIDDEN}"),
         "Redis at redis://:***@127.0.0.1:", "does not answer", "check WORKER_REDIS_URL",
         hidden="cr#e"),
    Case("Redis URL: relative unix socket path",
         lambda c: _settings_error(c, "WORKER_REDIS_URL", "unix://var/redis.sock"),
         "WORKER_REDIS_URL='unix://var/redis.sock'", "needs an absolute path",
         "unix:///run/redis.sock"),
    # Numbers and secrets
    Case("setting: inf", lambda c: _settings_error(c, "WORKER_SHUTDOWN_TIMEOUT_S", "inf"),
         "WORKER_SHUTDOWN_TIMEOUT_S", "='inf': Input should be a finite number",
         "Fix these variables"),
    Case("setting: huge value stops the web (CLI)",
         lambda c: c.cli(["web"], EXPORT_MAX_FILE_AGE_HOURS="1e300"),
         "EXPORT_MAX_FILE_AGE_HOURS", "='1e300'", "less than or equal to 87600"),
    Case("setting: huge link lifetime",
         lambda c: _settings_error(c, "EXPORT_DEFAULT_EXPIRY_MINUTES", str(10**12)),
         "EXPORT_DEFAULT_EXPIRY_MINUTES", "='1000000000000'", "less than or equal to 525600"),
    Case("setting: EXPORT_DIR empty", lambda c: _settings_error(c, "EXPORT_DIR", ""),
         "EXPORT_DIR", "='': Value error, empty", "remove the line to use the default"),
    Case("secret: 40 times the same character",
         lambda _c: raised(lambda: parse_secrets("a" * 40)),
         "EXPORT_TOKEN_SECRET", "looks guessable", "generate one with", hidden="aaaaa"),
    Case("secret: a sequence stops the worker (CLI)",
         lambda c: c.cli(["worker"], EXPORT_TOKEN_SECRET="0123456789" * 4),
         "EXPORT_TOKEN_SECRET", "looks guessable", "generate one with", hidden="01234"),
    # bullpen web: start-up
    Case("web without authentication in production (CLI)",
         lambda c: c.cli(["web", "--port", str(free_port())]),
         "refusing to start without authentication", "in production", "WEB_ALLOW_NO_AUTH=true"),
    Case("web token of one character (CLI)",
         lambda c: c.cli(["web", "--host", "0.0.0.0"], WEB_AUTH_TOKEN="x"),
         "WEB_AUTH_TOKEN", "is 1 bytes", "Generate tokens with"),
    Case("basic auth with an empty password (CLI)",
         lambda c: c.cli(["web"], WEB_BASIC_AUTH="admin:"),
         "WEB_BASIC_AUTH's password", "is empty", "Generate tokens with"),
    Case("allowed hosts not a list of names",
         lambda c: _settings_error(c, "WEB_ALLOWED_HOSTS", "dash.example.com;evil"),
         "WEB_ALLOWED_HOSTS", "'dash.example.com;evil'", "a comma-separated list"),
    # bullpen web: requests
    Case("DNS rebinding: a foreign Host",
         _http("GET", "/api/overview", {"host": "attacker.test"}, NO_AUTH),
         "400 Host 'attacker.test' is not served here", "(serving 127.0.0.1, ::1, localhost)",
         "add it to WEB_ALLOWED_HOSTS"),
    Case("cross-origin POST",
         _http("POST", "/api/queue/pause", {"origin": "http://attacker.test"}, NO_AUTH),
         "403 cross-origin request refused", "(Origin 'http://attacker.test')",
         "post from the dashboard's own pages"),
    Case("proxied request to a dashboard without auth",
         _http("GET", "/api/overview", {"x-forwarded-for": "203.0.113.9"}, NO_AUTH),
         "403 this dashboard has no authentication", "(Forwarded, X-Forwarded-*, Via)",
         "set WEB_AUTH_TOKEN"),
    Case("guessed bearer tokens",
         _http("GET", "/api/overview", {"authorization": "Bearer guess"}, WITH_TOKEN, times=12),
         "429", "too many failed sign-in attempts", "try again in"),
    Case("forged session cookie",
         _http("GET", "/api/overview", {"cookie": "bullpen_session=forged.0123abcd"},
               WITH_TOKEN),
         "401", "authentication required", None),
    Case("public 404 under /exports/a/b",
         _http("GET", "/exports/a/b", {"accept": "text/html"}, WITH_TOKEN),
         "404", "There is nothing at this address.", None, hidden="redis://"),
    Case("framing the dashboard (clickjacking)",
         _http("GET", "/api/overview", {}, NO_AUTH),
         "200", "frame-ancestors 'none'", None),
    Case("empty export with a suffix range", _empty_file_range,
         "200", "sandbox", None, hidden="0--1"),
    Case("metrics token on the API",
         _http("GET", "/api/overview",
               {"authorization": f"Bearer {WITH_TOKEN['web_metrics_token']}"}, WITH_TOKEN),
         "401", "authentication required", None),
    # Files
    Case("export content type with CR LF", _content_type_with_crlf,
         "content_type", "'text/csv\\r\\nX-Evil: 1' is not a media type", "pass one such as"),
    Case("cleanup: bullpen's name plus a newline",
         lambda c: c.cleanup_output(_foreign_name_with_newline),
         "skipped 1: foreign file (not named by bullpen)",
         f"{naming.data_name(EXPORT_ID)}\\n: foreign", None),
    *([Case("cleanup: an export owned by another user",
            lambda c: c.cleanup_output(_someone_elses_export),
            "skipped 1: owned by another user", f"{naming.data_name(EXPORT_ID)}: owned", None)]
      if os.geteuid() == 0 else []),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_with_a_message_that_says_what_and_how_to_fix(
        case: Case, app_env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    message = case.produce(Ctx(app_env, tmp_path, monkeypatch))
    for fragment in (case.names, case.shows, case.fix):
        if fragment is not None:
            assert fragment in message, f"{fragment!r} not in:\n{message}"
    if case.hidden is not None:
        assert case.hidden not in message, f"{case.hidden!r} shown in:\n{message}"
