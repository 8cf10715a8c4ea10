"""Configuration from the environment and `.env`, with BullMQ-app names and defaults."""

from __future__ import annotations

import difflib
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bullpen.errors import SettingsError
from bullpen.keyspace import Keyspace

_SECRET_FIELDS = frozenset({"export_token_secret", "web_auth_token", "web_basic_auth"})


class Settings(BaseSettings):
    """Every knob bullpen reads; field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    worker_default_queue: str = Field("dojo-slims", min_length=1, pattern=r"^[^:\s]+$")
    worker_redis_url: str | None = None
    worker_prefix: str = Field("bull", min_length=1, pattern=r"^[^:\s]+$")
    worker_concurrency: int = Field(5, ge=1, le=10_000)
    worker_limiter_max: int = Field(10, ge=0)
    worker_limiter_duration: int = Field(1000, ge=1, description="milliseconds")
    worker_lock_duration_ms: int = Field(30_000, ge=100)
    worker_stalled_interval_ms: int = Field(30_000, ge=100)
    worker_max_stalled_count: int = Field(1, ge=0)
    worker_shutdown_timeout_s: float = Field(30.0, ge=0)
    worker_default_attempts: int = Field(3, ge=1)
    worker_backoff_type: Literal["exponential", "fixed"] = "exponential"
    worker_backoff_delay_ms: int = Field(1000, ge=0)
    worker_keep_completed: int = Field(1000, ge=0)
    worker_keep_failed: int = Field(5000, ge=0)
    worker_heartbeat_interval_s: float = Field(5.0, gt=0)
    worker_metrics_max_data_points: int = Field(10_080, ge=0, description="minutes kept; 0 = off")
    worker_processes: int = Field(1, ge=1, le=64)
    job_max_data_bytes: int = Field(512 * 1024, ge=1)

    bullpen_app: str | None = Field(None, description="package with tasks/schedules modules")
    bullpen_env: Literal["production", "development"] = "production"
    bullpen_var_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    export_token_secret: SecretStr = SecretStr("")
    export_default_expiry_minutes: int = Field(15, ge=1)
    export_max_file_age_hours: float = Field(24, gt=0)
    export_dir: Path | None = None

    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    web_auth_token: SecretStr = SecretStr("")
    web_basic_auth: SecretStr = SecretStr("")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("worker_redis_url", "bullpen_app", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @cached_property
    def export_path(self) -> Path:
        """The export directory: EXPORT_DIR, or `exports` inside the var dir."""
        return self.export_dir if self.export_dir is not None else self.bullpen_var_dir / "exports"

    @property
    def keyspace(self) -> Keyspace:
        """bullpen's Redis keys for the default queue."""
        return Keyspace(self.worker_prefix, self.worker_default_queue)

    @property
    def is_development(self) -> bool:
        return self.bullpen_env == "development"


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Variables that look like bullpen settings but are not, each with a suggestion."""
    known = {name.upper() for name in Settings.model_fields}
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
    if field in _SECRET_FIELDS:
        shown = "<hidden>"
    else:
        raw = os.environ.get(variable, env_file_values.get(variable, error.get("input")))
        shown = repr(raw)
    return f"  {variable}={shown}: {error['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings; on bad values raise one SettingsError naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        env_values = _read_env_file(Path(".env"))
        lines = [_describe(dict(err), env_values) for err in exc.errors()]
        raise SettingsError(
            "Invalid configuration (environment or .env):\n"
            + "\n".join(lines)
            + "\nFix these variables; see .env.example for every setting and its default."
        ) from None


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip().upper()] = value.strip().strip("'\"")
    return values
