"""Signed, expiring download tokens (itsdangerous HMAC-SHA256) and the secrets that sign them."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadData, BadPayload, BadSignature, URLSafeTimedSerializer

from bullpen import logs
from bullpen.errors import SecretError, TokenExpiredError, TokenInvalidError
from bullpen.secret_strength import weakness
from bullpen.settings import Settings

log = logs.get("exports")

PLACEHOLDER_SECRET = "your-secret-here"  # the example .env's value, never a real secret
MIN_SECRET_BYTES = 32
# token_hex(16), 128 random bits, is estimated at about 110: the bar sits below it.
MIN_SECRET_BITS = 96
SECRET_SEPARATOR = ","
DOWNLOAD_PURPOSE = "export-download"
# The salt keeps these tokens useless to anything else signing with the same secret;
# the purpose claim inside tells bullpen's own token kinds apart with a specific error.
_SALT = "bullpen.exports.token.v1"
MAX_CLOCK_SKEW_S = 60
_DEV_SECRET_FILE = "export-token-secret"
_GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: which export, for what, and until when."""

    export_id: str
    purpose: str
    expires_at: datetime
    issued_at: datetime


def _check_secret(secret: str, position: int, count: int) -> None:
    where = "EXPORT_TOKEN_SECRET" if count == 1 else f"EXPORT_TOKEN_SECRET entry {position}/{count}"
    if secret == PLACEHOLDER_SECRET:
        raise SecretError(f"{where} is still the placeholder {PLACEHOLDER_SECRET!r} from the "
                          f"example .env; replace it ({_GENERATE_HINT})")
    problem = weakness(secret, MIN_SECRET_BYTES, MIN_SECRET_BITS)
    if problem is not None:
        advice = (f"set a random secret of at least {MIN_SECRET_BYTES} bytes" if not secret
                  else "replace it")
        raise SecretError(f"{where} {problem}; {advice} ({_GENERATE_HINT})")


def parse_secrets(raw: str) -> list[str]:
    """Split EXPORT_TOKEN_SECRET (comma-separated, newest first) and check every entry."""
    entries = [part.strip() for part in raw.split(SECRET_SEPARATOR)] if raw.strip() else [""]
    for position, entry in enumerate(entries, start=1):
        _check_secret(entry, position, len(entries))
    return entries


def _dev_secret(var_dir: Path) -> str:
    """A random secret kept under the var dir, so worker and web processes share it."""
    path = var_dir / _DEV_SECRET_FILE
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(48)
    try:
        # O_EXCL: when two processes start together, the first one's secret wins for both.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(candidate)
    log.warning("DEVELOPMENT MODE: EXPORT_TOKEN_SECRET is unset, so a random secret was "
                "generated and saved in %s. Never use this in production: set "
                "EXPORT_TOKEN_SECRET (and BULLPEN_ENV=production).", path)
    return candidate


def load_secrets(settings: Settings) -> list[str]:
    """The signing secrets, newest first; raises SecretError unless they are usable.

    In development mode an empty or placeholder secret is replaced by a generated one.
    """
    raw = settings.export_token_secret.get_secret_value()
    if settings.is_development and raw.strip() in ("", PLACEHOLDER_SECRET):
        secret = _dev_secret(settings.bullpen_var_dir)
        log.warning("DEVELOPMENT MODE: export download tokens are signed with the generated "
                    "secret in %s", settings.bullpen_var_dir / _DEV_SECRET_FILE)
        return parse_secrets(secret)
    return parse_secrets(raw)


class TokenSigner:
    """Signs and checks download tokens; the newest secret signs, every listed secret verifies."""

    def __init__(self, secrets_newest_first: list[str], skew_s: float = MAX_CLOCK_SKEW_S) -> None:
        # itsdangerous signs with the *last* key of its list.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(secrets_newest_first)), salt=_SALT,
            signer_kwargs={"digest_method": hashlib.sha256},
        )
        self._skew_s = skew_s

    def sign(self, export_id: str, expires_at: datetime, purpose: str = DOWNLOAD_PURPOSE) -> str:
        payload = {"e": export_id, "p": purpose, "x": int(expires_at.timestamp())}
        return str(self._serializer.dumps(payload))

    def decode(self, token: str, purpose: str = DOWNLOAD_PURPOSE) -> TokenClaims:
        """The token's claims; TokenInvalidError or TokenExpiredError when it cannot be used."""
        if not isinstance(token, str) or not token.strip():
            raise TokenInvalidError("empty token")
        payload, issued_at = self._unsign(token)
        claims = _claims(payload, issued_at)
        now_s = time.time()
        if claims.issued_at.timestamp() > now_s + self._skew_s:
            raise TokenInvalidError(f"issued in the future ({claims.issued_at.isoformat()}); "
                                    "check the clocks of the signing and verifying hosts")
        if claims.purpose != purpose:
            raise TokenInvalidError(f"wrong purpose {claims.purpose!r} (expected {purpose!r})")
        if claims.expires_at.timestamp() <= now_s:
            raise TokenExpiredError(claims.expires_at)
        return claims

    def _unsign(self, token: str) -> tuple[Any, datetime]:
        try:
            payload, issued_at = self._serializer.loads(token, return_timestamp=True)
        except BadPayload:
            raise TokenInvalidError("malformed payload") from None
        except BadSignature:
            raise TokenInvalidError("bad signature") from None
        except BadData:
            raise TokenInvalidError("malformed token") from None
        return payload, issued_at


def _claims(payload: Any, issued_at: datetime) -> TokenClaims:
    if not isinstance(payload, dict):
        raise TokenInvalidError("malformed payload (not an object)")
    export_id, purpose, expires_s = payload.get("e"), payload.get("p"), payload.get("x")
    if not isinstance(export_id, str) or not isinstance(purpose, str) \
            or not isinstance(expires_s, int) or isinstance(expires_s, bool):
        raise TokenInvalidError("malformed payload (missing or mistyped fields)")
    try:
        expires_at = datetime.fromtimestamp(expires_s, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise TokenInvalidError("malformed payload (expiry out of range)") from None
    return TokenClaims(export_id, purpose, expires_at, issued_at)
