"""Doctor checks that need no Redis: settings, secrets, the export directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bullpen.doctor.check import Check, fail, ok, warn
from bullpen.errors import SecretError, SettingsError
from bullpen.exports.tokens import PLACEHOLDER_SECRET, parse_secrets
from bullpen.redis_address import parse as parse_redis_url
from bullpen.secret_strength import web_credential_problems
from bullpen.settings import Settings, load_settings

GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
# Values copied from examples and tutorials; a deployment still using one is unprotected.
PLACEHOLDERS = frozenset({
    "your-secret-here", "changeme", "change-me", "secret", "password", "admin", "test",
    "example", "xxx", "todo",
})
MIN_FREE_BYTES = 100 * 2**20
LOW_FREE_BYTES = 2**30


def check_settings() -> tuple[Check, Settings | None]:
    """Parse the environment and .env exactly as every bullpen command does."""
    try:
        loaded = load_settings()
    except SettingsError as exc:
        bad = [line.strip() for line in str(exc).splitlines() if line.startswith("  ")]
        return fail("settings", "invalid: " + "; ".join(bad),
                    "correct these variables in the environment or .env "
                    "(.env.example lists every setting and its default)"), None
    where = "the environment and .env" if Path(".env").is_file() else "the environment, no .env"
    mode = f"BULLPEN_ENV={loaded.bullpen_env}"
    if "bullpen_env" not in loaded.model_fields_set and loaded.is_development:
        mode = f"development mode, recorded by `bullpen worker --dev` in {loaded.bullpen_var_dir}"
    return ok("settings", f"valid (from {where}; {mode})"), loaded


def check_secrets(loaded: Settings) -> list[Check]:
    raw = loaded.export_token_secret.get_secret_value()
    checks: list[Check] = []
    if loaded.is_development and raw.strip() in ("", PLACEHOLDER_SECRET):
        checks.append(warn("export token secret", "unset or placeholder; development mode signs "
                           "with a generated secret kept under the var dir",
                           f"before production set EXPORT_TOKEN_SECRET: {GENERATE}"))
    else:
        try:
            count = len(parse_secrets(raw))
        except SecretError as exc:
            message = str(exc).split(" (generate", 1)[0].split("; ", 1)[0]
            checks.append(fail("export token secret", message,
                               f"set EXPORT_TOKEN_SECRET to 32+ random bytes: {GENERATE}"))
        else:
            checks.append(ok("export token secret", f"set ({count} key(s), none a placeholder)"))
    weak = _weak_other_secrets(loaded)
    if weak:
        checks.append(fail("other secrets", "; ".join(weak),
                           f"set each to a random value: {GENERATE}"))
    return checks


def _weak_other_secrets(loaded: Settings) -> list[str]:
    """The optional secrets that are set but guessable, by name and problem (never value);
    the dashboard's by the rules `bullpen web` refuses to start with."""
    weak = web_credential_problems(loaded.web_auth_token.get_secret_value(),
                                   loaded.web_basic_auth.get_secret_value(),
                                   loaded.web_metrics_token.get_secret_value())
    if loaded.worker_redis_url:
        password = parse_redis_url(loaded.worker_redis_url).password
        if password is not None and password.lower() in PLACEHOLDERS:
            weak.append("WORKER_REDIS_URL's password is a placeholder")
    return weak


def check_export_dir(loaded: Settings) -> Check:
    """Present, a directory, writable by this user, with room for more files."""
    name = "export directory"
    path = loaded.export_path.absolute()
    variable = "EXPORT_DIR" if loaded.export_dir is not None else "BULLPEN_VAR_DIR/exports"
    if not path.exists():
        return fail(name, f"{path} ({variable}) does not exist",
                    f"mkdir -p {path}, owned by the user the worker and web run as")
    if not path.is_dir():
        return fail(name, f"{path} ({variable}) is not a directory",
                    "move that file away, or point EXPORT_DIR at a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return fail(name, f"{path} is not writable by uid {os.getuid()}: {exc.strerror}",
                    f"chown -R <service user> {path} (or point EXPORT_DIR somewhere writable)")
    free = shutil.disk_usage(path).free
    message = f"{path} is writable, {free / 2**30:.1f} GiB free"
    if free < MIN_FREE_BYTES:
        return fail(name, message, "free disk space there, or lower EXPORT_MAX_FILE_AGE_HOURS "
                    "and run `bullpen cleanup-exports`")
    if free < LOW_FREE_BYTES:
        return warn(name, message, "free disk space soon; exports fail when the disk is full")
    return ok(name, message)
