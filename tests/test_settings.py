"""Settings: the specification's names and defaults, and one clear error for every bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bullpen.errors import SettingsError
from bullpen.settings import Settings, load_settings, unknown_variables
from tests.helpers.processes import run_cli, start_worker


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


NUMBERS = [name for name, field in Settings.model_fields.items()
           if field.annotation in (int, float)]


def _upper_bound(name: str) -> float | None:
    for item in Settings.model_fields[name].metadata:
        bound = getattr(item, "le", None) or getattr(item, "lt", None)
        if bound is not None:
            return float(bound)
    return None


@pytest.mark.parametrize("name", NUMBERS)
def test_every_number_has_an_upper_bound_and_refuses_inf(
        name: str, offline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    bound = _upper_bound(name)
    assert bound is not None, f"{name.upper()} has no upper bound"
    for value in ("inf", "nan", str(int(bound) * 10 + 1)):
        monkeypatch.setenv(name.upper(), value)
        with pytest.raises(SettingsError, match=f"{name.upper()}='{value}'"):
            load_settings()


def test_export_dir_and_var_dir_refuse_empty_and_expand_the_home(
        offline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EXPORT_DIR", "~/exports")
    monkeypatch.setenv("BULLPEN_VAR_DIR", "~/var")
    loaded = load_settings()
    assert (loaded.export_path, loaded.bullpen_var_dir) == (tmp_path / "exports", tmp_path / "var")
    for variable, value, problem in (("EXPORT_DIR", "", "empty"), ("EXPORT_DIR", "  ", "empty"),
                                     ("BULLPEN_VAR_DIR", "", "empty"),
                                     ("EXPORT_DIR", "~no-such-user-xyz/x", "cannot expand")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError, match=f"{variable}='{value}': Value error, {problem}"):
            load_settings()
        monkeypatch.setenv(variable, "~/x")


def test_the_worker_logs_the_resolved_export_directory(app_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    worker = start_worker({**app_env, "EXPORT_DIR": "relative/exports"})
    try:
        worker.wait_for(f"Export directory: {tmp_path / 'relative' / 'exports'}")
    finally:
        worker.signal()
        worker.wait()


def test_a_malformed_redis_url_stops_every_command_with_exit_2(
        offline_env: dict[str, str]) -> None:
    for url in ("localhost:6379", "redis://h:notaport/0", "redis://:pa/ss@h:notaport/0"):
        for command in (["worker"], ["web"], ["jobs"]):
            result = run_cli(command, {**offline_env, "WORKER_REDIS_URL": url})
            assert result.returncode == 2, (command, url, result.stderr)
            assert "WORKER_REDIS_URL=" in result.stderr and "e.g. redis://localhost:6379/0" \
                in result.stderr
            assert "Traceback" not in result.stderr and "pa/ss" not in result.stderr
