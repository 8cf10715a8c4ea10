"""The recipes under deploy/: they parse, carry the production settings, and call real commands."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bullpen.settings import Settings, unknown_variables
from tests.helpers import REPO
from tests.helpers.processes import BULLPEN, run_cli
from tests.helpers.redis_server import free_port
from tests.helpers.web import running_web

DEPLOY = REPO / "deploy"
UNITS = ("bullpen-worker.service", "bullpen-worker@.service", "bullpen-web.service")
INSTALLED_BULLPEN = "/opt/bullpen/.venv/bin/bullpen"
SHUTDOWN_TIMEOUT_S = Settings.model_fields["worker_shutdown_timeout_s"].default


def _unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as section -> (key, value) pairs; keys may repeat, as systemd allows."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{name}: not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def _values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [value for name, value in unit.get(section, []) if name == key]


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec)?", text)
    assert match, f"not a plain number of seconds: {text!r}"
    return float(match.group(1))


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_settings(name: str) -> None:
    unit = _unit(name)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = {key: _values(unit, "Service", key) for key, _ in unit["Service"]}
    assert service["Restart"] == ["always"]
    assert service["KillSignal"] == ["SIGTERM"]
    if "worker" in name:  # systemd's SIGKILL must come after the worker's own drain timeout
        assert _seconds(service["TimeoutStopSec"][0]) > SHUTDOWN_TIMEOUT_S
        # One SIGTERM to bullpen, not one more to each of its worker processes.
        assert service["KillMode"] == ["mixed"]
    assert "/etc/bullpen/bullpen.env" in service["EnvironmentFile"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["User"] != ["root"]
    assert service["ExecStart"][0].startswith(INSTALLED_BULLPEN + " ")
    assert _values(unit, "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        # verify checks that ExecStart exists, so point it at this checkout's bullpen.
        (tmp_path / name).write_text(text.replace(INSTALLED_BULLPEN, BULLPEN))
    targets = [str(tmp_path / name.replace("@.", "@1.")) for name in UNITS]
    result = subprocess.run(["systemd-analyze", "verify", *targets], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    return loaded


def test_compose_file() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis", "worker", "web"}
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    worker, web = services["worker"], services["web"]
    assert worker["command"] == ["bullpen", "worker"]
    assert web["command"][:2] == ["bullpen", "web"]
    # `--scale worker=N` fails with a fixed name or a published port.
    assert "container_name" not in worker and "ports" not in worker
    assert _seconds(worker["stop_grace_period"]) > SHUTDOWN_TIMEOUT_S
    for service in (worker, web):
        assert service["environment"]["WORKER_REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["healthcheck"]["test"][:2] == ["CMD", "bullpen"]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert "WEB_AUTH_TOKEN" in web["environment"]


def _dockerfile() -> list[tuple[str, str]]:
    """The final stage's instructions, continuation lines joined."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [tuple(line.split(None, 1)) for line in lines
                    if line and not line.startswith("#")]
    final = max(i for i, parts in enumerate(instructions) if parts[0] == "FROM")
    return [(parts[0], parts[1]) for parts in instructions[final:]]


def test_dockerfile_runtime_stage() -> None:
    instructions = dict(_dockerfile())
    assert instructions["FROM"].endswith("-slim")
    assert instructions["USER"] not in ("root", "0")
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(instructions["CMD"]) == ["bullpen", "worker"]  # exec form
    healthcheck = instructions["HEALTHCHECK"]
    assert json.loads(healthcheck[healthcheck.index("CMD") + 3:])[0] == "bullpen"


def test_process_manager_recipes() -> None:
    supervisor = configparser.RawConfigParser()
    supervisor.read(DEPLOY / "supervisor" / "bullpen.conf")
    worker = supervisor["program:bullpen-worker"]
    assert worker["stopsignal"] == "TERM"
    assert int(worker["stopwaitsecs"]) > SHUTDOWN_TIMEOUT_S
    assert worker["stopasgroup"] == "false"  # bullpen passes the stop on to its processes
    pm2 = _pm2_apps()
    if pm2 is not None:
        by_name = {app["name"]: app for app in pm2}
        assert by_name["bullpen-worker"]["interpreter"] == "none"
        assert by_name["bullpen-worker"]["treekill"] is False
        assert by_name["bullpen-worker"]["kill_timeout"] > SHUTDOWN_TIMEOUT_S * 1000


def _pm2_apps() -> list[dict[str, Any]] | None:
    node = shutil.which("node")
    if node is None:
        return None
    path = DEPLOY / "pm2" / "ecosystem.config.js"
    result = subprocess.run([node, "-e", f"console.log(JSON.stringify(require({str(path)!r})))"],
                            capture_output=True, text=True, timeout=30, check=True)
    apps: list[dict[str, Any]] = json.loads(result.stdout)["apps"]
    return apps


def _recipe_commands() -> set[tuple[str, ...]]:
    """Every bullpen command line the recipes run, without the leading program path."""
    found: set[tuple[str, ...]] = set()
    for name in UNITS:
        found.add(tuple(shlex.split(_values(_unit(name), "Service", "ExecStart")[0])[1:]))
    for service in _compose()["services"].values():
        for command in (service.get("command"), service.get("healthcheck", {}).get("test")):
            if command and "bullpen" in command:
                found.add(tuple(command[command.index("bullpen") + 1:]))
    for instruction, argument in _dockerfile():
        if instruction in ("CMD", "HEALTHCHECK"):
            command = json.loads(argument[argument.index("["):])
            found.add(tuple(command[1:]))
    supervisor = configparser.RawConfigParser()
    supervisor.read(DEPLOY / "supervisor" / "bullpen.conf")
    for section in supervisor.sections():
        if section.startswith("program:"):
            found.add(tuple(shlex.split(supervisor[section]["command"])[1:]))
    for app in _pm2_apps() or []:
        found.add(tuple(shlex.split(app["args"])))
    return found


def test_every_command_the_recipes_run_exists(env: dict[str, str]) -> None:
    commands = _recipe_commands()
    assert {("worker",), ("web",), ("health", "--worker")} <= commands
    for command in sorted(commands):
        result = run_cli([*command, "--help"], env)
        assert result.returncode == 0, f"bullpen {' '.join(command)}: {result.stderr}"


def test_the_variables_the_recipes_use_are_not_flagged_as_unknown_settings() -> None:
    read = re.findall(r"process\.env\.(\w+)", (DEPLOY / "pm2" / "ecosystem.config.js").read_text())
    assert "BULLPEN_HOME" in read
    names = set(read)
    for app in _pm2_apps() or []:
        names |= set(app.get("env", {}))
    for name in UNITS:
        names |= {value.split("=", 1)[0] for value in _values(_unit(name), "Service",
                                                               "Environment")}
    assert unknown_variables(dict.fromkeys(names, "x")) == []


GENERATOR = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
WEB_RECIPES = ("systemd/bullpen.env.example", "systemd/bullpen-web.service",
               "supervisor/bullpen.conf", "pm2/ecosystem.config.js", "docker/compose.yaml")


@pytest.mark.parametrize("recipe", WEB_RECIPES)
def test_every_recipe_carries_the_web_auth_setting_and_how_to_make_it(recipe: str) -> None:
    text = (DEPLOY / recipe).read_text()
    assert "WEB_AUTH_TOKEN" in text and GENERATOR in text
    assert "WEB_ALLOWED_HOSTS" in text


def test_env_example_lists_every_setting() -> None:
    listed = {line.lstrip("#").split("=", 1)[0]
              for line in (REPO / ".env.example").read_text().splitlines() if "=" in line}
    missing = {name.upper() for name in Settings.model_fields} - listed
    assert not missing, f".env.example does not list {sorted(missing)}"


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_the_systemd_environment_runs_bullpen_web_only_with_its_token(
        env: dict[str, str]) -> None:
    recipe = _env_file(DEPLOY / "systemd" / "bullpen.env.example")
    generated = subprocess.run(shlex.split(GENERATOR.replace("python", sys.executable, 1)),
                               capture_output=True, text=True, check=True).stdout.strip()
    # The substitutions: this test's Redis, queue and export secret.
    keep = ("WORKER_REDIS_URL", "WORKER_DEFAULT_QUEUE", "EXPORT_TOKEN_SECRET")
    base = {**env, **recipe, **{name: env[name] for name in keep}}
    as_shipped = run_cli(["web", "--port", str(free_port())], base)
    assert as_shipped.returncode == 2
    assert "refusing to start without authentication in production" in as_shipped.stderr
    with running_web({**base, "WEB_AUTH_TOKEN": generated}) as (_, url):
        assert httpx.get(f"{url}/api/overview").status_code == 401
        assert httpx.get(f"{url}/api/overview", headers={
            "Authorization": f"Bearer {generated}"}).status_code == 200
