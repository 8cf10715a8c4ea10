"""Download tokens: the token table, secret checks, rotation, and the cap at deletion time."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from pydantic import SecretStr

from bullpen.errors import (
    ExportError,
    ExportNotFoundError,
    SecretError,
    TokenExpiredError,
    TokenInvalidError,
)
from bullpen.exports.service import ExportService
from bullpen.exports.tokens import TokenSigner, load_secrets, parse_secrets
from bullpen.settings import Settings

NEW = "new-secret-Bv5Kq9Xz2Lr7Tm4Wn1Hc8Jd3Fg6Sy0Pa"
OLD = "old-secret-Zc2Mw7Qr5Lt9Xk3Vn8Hb1Jf6Dg4Sp0Ye"
OTHER = "other-secret-Ny6Hv1Kq8Xz3Lr5Tm9Wc2Jd7Fg4Sb0Pe"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPORT_ID = "1740830400000-0123456789abcdef"


def _sign(secrets: list[str], at: datetime, expires_in: timedelta = timedelta(minutes=15),
          purpose: str = "export-download") -> str:
    with time_machine.travel(at, tick=False):
        return TokenSigner(secrets).sign(EXPORT_ID, at + expires_in, purpose)


def _flip_last_char(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _tamper_payload(token: str) -> str:
    payload, rest = token.split(".", 1)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["e"] = "1740830400000-ffffffffffffffff"
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return forged.decode().rstrip("=") + "." + rest


def _signed_payload(payload: object, raw: bytes | None = None) -> str:
    """A correctly signed token carrying `payload` (or `raw` bytes as the payload)."""
    serializer = TokenSigner([NEW])._serializer
    with time_machine.travel(NOW, tick=False):
        if raw is None:
            return str(serializer.dumps(payload))
        return serializer.make_signer(serializer.salt).sign(raw).decode()


VALID = _sign([NEW], NOW)
MISTYPED = "malformed payload (missing or mistyped fields)"
TABLE = [
    # (case, token, verifying secrets, expected error or None, reason fragment)
    ("valid", VALID, [NEW], None, ""),
    ("expired", _sign([NEW], NOW - timedelta(minutes=20)), [NEW], TokenExpiredError, ""),
    ("tampered signature", _flip_last_char(VALID), [NEW], TokenInvalidError, "bad signature"),
    ("tampered payload", _tamper_payload(VALID), [NEW], TokenInvalidError, "bad signature"),
    ("wrong secret", VALID, [OTHER], TokenInvalidError, "bad signature"),
    ("rotated secret", _sign([OLD], NOW), [NEW, OLD], None, ""),
    ("future timestamp", _sign([NEW], NOW + timedelta(hours=1)), [NEW], TokenInvalidError,
     "issued in the future (2025-03-01T13:00:00+00:00); check the clocks of the signing and "
     "verifying hosts"),
    ("issued at the skew limit", _sign([NEW], NOW + timedelta(seconds=60)), [NEW], None, ""),
    ("wrong purpose", _sign([NEW], NOW, purpose="password-reset"), [NEW], TokenInvalidError,
     "wrong purpose 'password-reset' (expected 'export-download')"),
    ("garbage", "not a token at all", [NEW], TokenInvalidError, "bad signature"),
    ("garbage with dots", "a.b.c", [NEW], TokenInvalidError, "bad signature"),
    ("empty", "", [NEW], TokenInvalidError, "empty token"),
    ("blank", "  ", [NEW], TokenInvalidError, "empty token"),
    ("payload not base64 JSON", _signed_payload(None, b"%%%"), [NEW], TokenInvalidError,
     "malformed payload"),
    ("payload not an object", _signed_payload([EXPORT_ID]), [NEW], TokenInvalidError,
     "malformed payload (not an object)"),
    ("export id not a string", _signed_payload({"e": 1, "p": "export-download", "x": 2**31}),
     [NEW], TokenInvalidError, MISTYPED),
    ("purpose missing", _signed_payload({"e": EXPORT_ID, "x": 2**31}), [NEW],
     TokenInvalidError, MISTYPED),
    ("expiry a float", _signed_payload({"e": EXPORT_ID, "p": "export-download", "x": 2.0**31}),
     [NEW], TokenInvalidError, MISTYPED),
    ("expiry a boolean", _signed_payload({"e": EXPORT_ID, "p": "export-download", "x": True}),
     [NEW], TokenInvalidError, MISTYPED),
    ("expiry out of range", _signed_payload({"e": EXPORT_ID, "p": "export-download",
                                             "x": 10**20}),
     [NEW], TokenInvalidError, "malformed payload (expiry out of range)"),
]


@pytest.mark.parametrize(("case", "token", "secrets", "error", "reason"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_token_table(case: str, token: str, secrets: list[str], error: type[Exception] | None,
                     reason: str) -> None:
    signer = TokenSigner(secrets)
    with time_machine.travel(NOW, tick=False):
        if error is None:
            claims = signer.decode(token)
            assert claims.export_id == EXPORT_ID
            issued = NOW + timedelta(seconds=60) if "skew" in case else NOW
            assert (claims.issued_at, claims.expires_at) == (issued, issued + timedelta(minutes=15))
            return
        with pytest.raises(error) as caught:
            signer.decode(token)
    if isinstance(caught.value, TokenInvalidError):
        assert caught.value.reason == reason
    if isinstance(caught.value, TokenExpiredError):
        assert caught.value.expired_at == NOW - timedelta(minutes=5)


def test_expiry_is_exact_to_the_second() -> None:
    token = _sign([NEW], NOW)
    signer = TokenSigner([NEW])
    with time_machine.travel(NOW + timedelta(minutes=15, seconds=-1), tick=False):
        signer.decode(token)
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False), \
            pytest.raises(TokenExpiredError):
        signer.decode(token)


def test_newest_secret_signs_and_old_one_alone_rejects_it() -> None:
    token = _sign([NEW, OLD], NOW)
    with time_machine.travel(NOW, tick=False):
        TokenSigner([NEW]).decode(token)
        with pytest.raises(TokenInvalidError):
            TokenSigner([OLD]).decode(token)


def test_token_carries_only_id_purpose_and_expiry() -> None:
    payload = VALID.split(".", 1)[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims == {"e": EXPORT_ID, "p": "export-download",
                      "x": int((NOW + timedelta(minutes=15)).timestamp())}


@pytest.mark.parametrize(("raw", "message"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ("your-secret-here", "placeholder"),
    ("sh0rt-s3cr3t", "12 bytes, shorter than the 32"),
    (f"{NEW},t1ny9", "entry 2/2 is 5 bytes"),
    (f"{NEW},", "entry 2/2 is empty"),
    ("a" * 40, "looks guessable: about 0 bits"),
    ("abcdefghijklmnopqrstuvwxyz0123456789", "looks guessable"),
    ("hunter22" * 5, "looks guessable"),
    (f"{NEW},{'0123456789' * 4}", "entry 2/2 looks guessable"),
])
def test_weak_secrets_are_refused_without_showing_them(raw: str, message: str) -> None:
    with pytest.raises(SecretError) as caught:
        parse_secrets(raw)
    assert message in str(caught.value)
    for part in raw.split(","):
        if len(part.strip()) > 4:
            assert part.strip() not in str(caught.value).replace("your-secret-here", "")


GENERATE = "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"


@pytest.mark.parametrize(("raw", "message"), [
    ("", f"EXPORT_TOKEN_SECRET is empty; set a random secret of at least 32 bytes {GENERATE}"),
    ("your-secret-here", "EXPORT_TOKEN_SECRET is still the placeholder 'your-secret-here' from "
                         f"the example .env; replace it {GENERATE}"),
    ("sh0rt-s3cr3t", "EXPORT_TOKEN_SECRET is 12 bytes, shorter than the 32"),
    (f"{NEW},", "EXPORT_TOKEN_SECRET entry 2/2 is empty; set a random secret of at least 32"),
    (f"your-secret-here,{NEW}", "EXPORT_TOKEN_SECRET entry 1/2 is still the placeholder"),
])
def test_secret_errors_name_the_entry_and_the_fix(raw: str, message: str) -> None:
    with pytest.raises(SecretError) as caught:
        parse_secrets(raw)
    assert str(caught.value).startswith(message)
    if raw.startswith("sh0rt"):
        assert str(caught.value).endswith(f"; replace it {GENERATE}")


def test_several_secrets_newest_first() -> None:
    assert parse_secrets(f" {NEW} , {OLD} ") == [NEW, OLD]


def test_service_refuses_to_start_without_a_secret(offline_settings: Settings) -> None:
    weak = offline_settings.model_copy(
        update={"export_token_secret": SecretStr("your-secret-here")})
    with pytest.raises(SecretError, match="placeholder"):
        ExportService(weak)


def test_development_mode_generates_and_persists_a_secret(
        offline_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    var_dir = tmp_path / "project" / "var"  # made with its parents, private
    dev = offline_settings.model_copy(update={"export_token_secret": SecretStr(""),
                                      "bullpen_env": "development",
                                      "bullpen_var_dir": var_dir})
    logger = logging.getLogger("bullpen.exports")
    logger.addHandler(caplog.handler)  # bullpen's logger may not propagate to the root
    try:
        first = load_secrets(dev)
    finally:
        logger.removeHandler(caplog.handler)
    secret_file = var_dir / "export-token-secret"
    # Each line once (caplog may see a record twice: through its handler and the root's).
    assert list(dict.fromkeys(record.getMessage() for record in caplog.records)) == [
        "DEVELOPMENT MODE: EXPORT_TOKEN_SECRET is unset, so a random secret was generated and "
        f"saved in {secret_file}. Never use this in production: set EXPORT_TOKEN_SECRET (and "
        "BULLPEN_ENV=production).",
        "DEVELOPMENT MODE: export download tokens are signed with the generated secret in "
        f"{secret_file}"]
    assert first[0] not in caplog.text
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert var_dir.stat().st_mode & 0o777 == 0o700
    assert load_secrets(dev) == first  # a second process shares the same secret
    assert len(first[0]) == 64  # token_urlsafe(48): 48 random bytes


def test_production_mode_never_generates(offline_settings: Settings, tmp_path: Path) -> None:
    prod = offline_settings.model_copy(update={"export_token_secret": SecretStr(""),
                                       "bullpen_var_dir": tmp_path / "prodvar"})
    with pytest.raises(SecretError):
        load_secrets(prod)
    assert not (tmp_path / "prodvar").exists()


def test_token_never_outlives_the_file(offline_settings: Settings) -> None:
    service = ExportService(offline_settings)
    created = NOW - timedelta(hours=23, minutes=50)
    with time_machine.travel(created, tick=False):
        export, _ = service.create("old.txt", b"x")
    with time_machine.travel(NOW, tick=False):
        issued = service.issue_token(export)
        assert issued.expires_at == created + timedelta(hours=24)  # not NOW + 15 min
        assert service.verify(issued.token).id == export.id
    with time_machine.travel(created + timedelta(hours=24), tick=False), \
            pytest.raises(TokenExpiredError):
        service.verify(issued.token)


def test_verify_reports_a_deleted_export(offline_settings: Settings) -> None:
    service = ExportService(offline_settings)
    export, token = service.create("gone.txt", b"bye")
    assert service.verify(token).id == export.id
    assert service.delete(export.id)
    with pytest.raises(ExportNotFoundError, match=export.id):
        service.verify(token)


def test_verify_with_rotated_settings(offline_settings: Settings) -> None:
    old_service = ExportService(
        offline_settings.model_copy(update={"export_token_secret": SecretStr(OLD)}))
    export, token = old_service.create("r.txt", b"r")
    rotated = ExportService(
        offline_settings.model_copy(update={"export_token_secret": SecretStr(f"{NEW},{OLD}")}))
    assert rotated.verify(token).id == export.id
    fresh = rotated.issue_token(export).token
    with pytest.raises(TokenInvalidError):
        old_service.verify(fresh)


def test_custom_lifetime_and_bad_lifetime(offline_settings: Settings) -> None:
    service = ExportService(offline_settings)
    with time_machine.travel(NOW, tick=False):
        export, _ = service.create("c.txt", b"c")
        assert service.issue_token(export, expires_in_minutes=5).expires_at == \
            NOW + timedelta(minutes=5)
        assert service.issue_token(export.id).expires_at == NOW + timedelta(minutes=15)
    for bad in (0, -1):
        with pytest.raises(ExportError, match="expires_in_minutes"):
            service.issue_token(export, expires_in_minutes=bad)
