"""Configuration from the environment and `.env`, with BullMQ-app names and defaults."""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bullpen.errors import QueueNameError, SettingsError
from bullpen.keyspace import Keyspace
from bullpen.queue_names import QueueSpec, parse_queue_specs
from bullpen.redis_address import RedisUrlError, redact
from bullpen.redis_address import parse as parse_redis_url
from bullpen.redis_tls import check_files as check_tls_files

_SECRET_FIELDS = frozenset({"export_token_secret", "web_auth_token", "web_basic_auth",
                            "web_metrics_token"})
_LIST_ITEM = re.compile(r"\*|\.?[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+(/\d{1,3})?|[0-9.]+/\d{1,2}")


DAY_MS = 86_400_000
MAX_DATA_BYTES = 64 * 2**20


class Settings(BaseSettings):
    """Every knob bullpen reads; field names map to upper-case environment variables.

    Every number has an upper bound, and no float accepts inf or nan: a value past any sane
    setting is a typo that would otherwise fail later, mid-job, in a way that hides why.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False,
        hide_input_in_errors=True,
    )

    worker_default_queue: str = Field("dojo-slims", min_length=1, max_length=200,
                                      pattern=r"^[^:\s]+$")
    worker_queues: str = Field("", description="queues a worker consumes: NAME[=CONCURRENCY],…")
    worker_redis_url: str | None = None
    worker_prefix: str = Field("bull", min_length=1, max_length=100, pattern=r"^[^:\s]+$")
    worker_concurrency: int = Field(5, ge=1, le=10_000)
    worker_limiter_max: int = Field(10, ge=0, le=1_000_000)
    worker_limiter_duration: int = Field(1000, ge=1, le=DAY_MS, description="milliseconds")
    worker_lock_duration_ms: int = Field(30_000, ge=100, le=DAY_MS)
    worker_stalled_interval_ms: int = Field(30_000, ge=100, le=DAY_MS)
    worker_max_stalled_count: int = Field(1, ge=0, le=1000)
    worker_shutdown_timeout_s: float = Field(30.0, ge=0, le=86_400, allow_inf_nan=False)
    worker_default_attempts: int = Field(3, ge=1, le=1000)
    worker_backoff_type: Literal["exponential", "fixed"] = "exponential"
    worker_backoff_delay_ms: int = Field(1000, ge=0, le=DAY_MS)
    worker_keep_completed: int = Field(1000, ge=0, le=10_000_000)
    worker_keep_failed: int = Field(5000, ge=0, le=10_000_000)
    worker_heartbeat_interval_s: float = Field(5.0, gt=0, le=3600, allow_inf_nan=False)
    worker_metrics_max_data_points: int = Field(10_080, ge=0, le=1_000_000,
                                                description="minutes kept; 0 = off")
    worker_processes: int = Field(1, ge=1, le=64)
    job_max_data_bytes: int = Field(512 * 1024, ge=1, le=MAX_DATA_BYTES)
    job_enqueue_wait_replicas: int = Field(0, ge=0, le=100, description="0 = off")
    job_enqueue_wait_timeout_ms: int = Field(1000, ge=1, le=60_000)

    bullpen_app: str | None = Field(None, description="package with tasks/schedules modules")
    bullpen_env: Literal["production", "development"] = "production"
    bullpen_var_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # OpenTelemetry traces, metrics and log ids, in Node BullMQ's names (the `otel` extra).
    bullpen_otel: bool = False

    export_token_secret: SecretStr = SecretStr("")
    export_default_expiry_minutes: int = Field(15, ge=1, le=525_600)
    export_max_file_age_hours: float = Field(24, gt=0, le=87_600, allow_inf_nan=False)
    export_dir: Path | None = None

    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    web_auth_token: SecretStr = SecretStr("")
    web_basic_auth: SecretStr = SecretStr("")
    web_metrics_token: SecretStr = SecretStr("")
    web_allow_no_auth: bool = False
    web_allowed_hosts: str = ""
    web_trusted_proxies: str = "127.0.0.1,::1"
    web_cookie_secure: bool | None = None
    web_session_max_age_s: int = Field(7 * 86_400, ge=1, le=90 * 86_400)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("worker_redis_url", "bullpen_app", "web_cookie_secure", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bullpen_otel")
    @classmethod
    def _otel_installed(cls, value: bool) -> bool:
        if value and not _installed("opentelemetry.trace"):
            raise ValueError("OpenTelemetry is not installed; install the extra (pip install "
                             "'bullpen[otel]') or set BULLPEN_OTEL=false")
        return value

    @field_validator("worker_redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_tls_files(parse_redis_url(value))
            except RedisUrlError as exc:
                raise ValueError(str(exc).removeprefix("Redis URL: ")) from None
        return value

    @field_validator("worker_queues")
    @classmethod
    def _queues(cls, value: str) -> str:
        try:
            parse_queue_specs(split_list(value), "entry")
        except QueueNameError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("bullpen_var_dir", "export_dir", mode="before")
    @classmethod
    def _directory(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            raise ValueError("empty, which would mean the working directory; give a directory, "
                             "or remove the line to use the default")
        expanded = os.path.expanduser(value.strip())
        if expanded.startswith("~"):
            raise ValueError("cannot expand this ~user; give an absolute path")
        return expanded

    @field_validator("web_allowed_hosts", "web_trusted_proxies")
    @classmethod
    def _name_list(cls, value: str) -> str:
        for item in split_list(value):
            if not _LIST_ITEM.fullmatch(item):
                raise ValueError(f"{item!r} is not a host name, address or network; expected "
                                 "a comma-separated list such as 'dash.example.com,127.0.0.1'")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact(value) if name == "worker_redis_url" and value else value

    @cached_property
    def export_path(self) -> Path:
        """The export directory: EXPORT_DIR, or `exports` inside the var dir."""
        return self.export_dir if self.export_dir is not None else self.bullpen_var_dir / "exports"

    @property
    def keyspace(self) -> Keyspace:
        """bullpen's Redis keys for the default queue."""
        return Keyspace(self.worker_prefix, self.worker_default_queue)

    @property
    def enqueue_wait(self) -> tuple[int, int] | None:
        """(replicas, timeout ms) each enqueue waits for (WAIT), or None: durable enqueue off."""
        if not self.job_enqueue_wait_replicas:
            return None
        return self.job_enqueue_wait_replicas, self.job_enqueue_wait_timeout_ms

    @property
    def queue_specs(self) -> list[QueueSpec]:
        """The queues `bullpen worker` consumes: WORKER_QUEUES, or the default queue."""
        listed = parse_queue_specs(split_list(self.worker_queues), "WORKER_QUEUES")
        return listed or [QueueSpec(self.worker_default_queue)]

    @property
    def is_development(self) -> bool:
        return self.bullpen_env == "development"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


# Named like settings but read by something else: the PM2 recipe (its install directory), the
# worker supervisor, the test suite.
OTHER_VARIABLES = frozenset({"BULLPEN_HOME", "BULLPEN_SUPERVISOR_PID", "BULLPEN_TEST_REDIS_URL"})


def split_list(value: str) -> list[str]:
    """A comma-separated setting as its non-empty items."""
    return [item.strip() for item in value.split(",") if item.strip()]


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Variables that look like bullpen settings but are not, each with a suggestion."""
    known = {name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    prefixes = ("WORKER_", "EXPORT_", "BULLPEN_", "WEB_", "JOB_")
    found = []
    for name in sorted(environ if environ is not None else os.environ):
        if name.startswith(prefixes) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def _describe(error: dict[str, Any], env_file_values: dict[str, str]) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    variable = field.upper()
    raw = os.environ.get(variable, env_file_values.get(variable, error.get("input")))
    if field in _SECRET_FIELDS:
        shown = "<hidden>"
    elif field == "worker_redis_url" and isinstance(raw, str):
        shown = repr(redact(raw))  # repr escapes every control character
    else:
        shown = repr(raw)
    return f"  {variable}={shown}: {error['msg']}"


# In the var dir: written by `bullpen worker --dev`, so that every command run with that var dir
# (the web dashboard, doctor, enqueue in another terminal) is in development mode too.
DEVELOPMENT_MARKER = "development"


def record_development(var_dir: Path) -> Path:
    """Note in `var_dir` that commands using it run in development mode (unless told not to)."""
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = var_dir / DEVELOPMENT_MARKER
    marker.write_text("Written by `bullpen worker --dev`: commands using this var dir run in "
                      "development mode unless BULLPEN_ENV says otherwise. Delete this file, or "
                      "set BULLPEN_ENV=production, to leave it.\n", encoding="utf-8")
    return marker


def forget_development(var_dir: Path) -> None:
    (var_dir / DEVELOPMENT_MARKER).unlink(missing_ok=True)


def load_settings(**overrides: Any) -> Settings:
    """Read settings; on bad values raise one SettingsError naming every bad variable.

    BULLPEN_ENV unset (environment and .env): development mode if `bullpen worker --dev`
    recorded it in the var dir, else production.
    """
    try:
        loaded = Settings(**overrides)
    except ValidationError as exc:
        env_values = _read_env_file(Path(".env"))
        lines = [_describe(dict(err), env_values) for err in exc.errors()]
        raise SettingsError(
            "Invalid configuration (environment or .env):\n"
            + "\n".join(lines)
            + "\nFix these variables; see .env.example for every setting and its default."
        ) from None
    if ("bullpen_env" not in loaded.model_fields_set
            and (loaded.bullpen_var_dir / DEVELOPMENT_MARKER).is_file()):
        recorded = loaded.model_copy(update={"bullpen_env": "development"})
        recorded.__pydantic_fields_set__.discard("bullpen_env")  # recorded, not configured
        return recorded
    return loaded


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip().upper()] = value.strip().strip("'\"")
    return values
