"""Settings: the specification's names and defaults, and one clear error for every bad variable."""

from __future__ import annotations

import pytest

from bullpen.errors import SettingsError
from bullpen.settings import load_settings, unknown_variables
from tests.helpers.processes import run_cli


def test_specified_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    for name in ("WORKER_DEFAULT_QUEUE", "WORKER_CONCURRENCY", "WORKER_LIMITER_MAX",
                 "WORKER_LIMITER_DURATION", "EXPORT_DEFAULT_EXPIRY_MINUTES",
                 "EXPORT_MAX_FILE_AGE_HOURS"):
        monkeypatch.delenv(name, raising=False)
    loaded = load_settings()
    assert (loaded.worker_default_queue, loaded.worker_concurrency, loaded.worker_limiter_max,
            loaded.worker_limiter_duration, loaded.export_default_expiry_minutes,
            loaded.export_max_file_age_hours) == ("dojo-slims", 5, 10, 1000, 15, 24)


def test_every_bad_variable_is_listed_with_its_value(offline_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "five")
    monkeypatch.setenv("WORKER_LIMITER_DURATION", "-3")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("WEB_AUTH_TOKEN", "")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "WORKER_CONCURRENCY='five'" in text
    assert "WORKER_LIMITER_DURATION='-3'" in text
    assert "LOG_FORMAT='xml'" in text and "text" in text and "json" in text


def test_values_from_dotenv_are_read_and_reported(offline_env: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    with open(".env", "w", encoding="utf-8") as handle:
        handle.write("WORKER_CONCURRENCY=lots\n")
    with pytest.raises(SettingsError, match="WORKER_CONCURRENCY='lots'"):
        load_settings()


def test_the_cli_exits_2_on_bad_settings(offline_env: dict[str, str]) -> None:
    result = run_cli(["jobs"], {**offline_env, "WORKER_CONCURRENCY": "0"})
    assert result.returncode == 2
    assert "WORKER_CONCURRENCY='0'" in result.stderr
    assert offline_env["EXPORT_TOKEN_SECRET"] not in result.stderr


def test_misspelled_variables_are_flagged_with_a_suggestion() -> None:

    environ = {"WORKER_CONCURENCY": "8", "WORKER_CONCURRENCY": "8", "EXPORT_TOKEN_SECRETS": "x",
               "PATH": "/bin", "WEB_PORTT": "1"}
    assert unknown_variables(environ) == [
        "EXPORT_TOKEN_SECRETS (did you mean EXPORT_TOKEN_SECRET?)",
        "WEB_PORTT (did you mean WEB_PORT?)",
        "WORKER_CONCURENCY (did you mean WORKER_CONCURRENCY?)",
    ]
