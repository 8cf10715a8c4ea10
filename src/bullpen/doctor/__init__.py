"""`bullpen doctor`: the seed's Troubleshooting list as checks, each with a one-line fix."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[str, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and the one thing to do about it."""

    name: str
    status: Status
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ok(name: str, message: str) -> Check:
    return Check(name, "ok", message)


def warn(name: str, message: str, fix: str) -> Check:
    return Check(name, "warn", message, fix)


def fail(name: str, message: str, fix: str) -> Check:
    return Check(name, "fail", message, fix)


def skip(name: str, why: str) -> Check:
    return Check(name, "skip", f"not checked: {why}")


def run_checks() -> list[Check]:
    """Every check, in the order of the seed's list; later ones skip when their basis failed."""
    from bullpen.doctor import local, server

    settings_check, loaded = local.check_settings()
    if loaded is None:
        later = ("export token secret", *server.NAMES, "export directory")
        return [settings_check, *(skip(name, "settings are invalid") for name in later)]
    checks = [settings_check, *local.check_secrets(loaded)]
    sys.path.insert(0, os.getcwd())  # so BULLPEN_APP resolves as it does for the worker
    checks += asyncio.run(server.check_server(loaded))
    checks.append(local.check_export_dir(loaded))
    return checks


def failed(checks: list[Check]) -> bool:
    return any(check.status == "fail" for check in checks)


def render(checks: list[Check]) -> str:
    """Human output: a mark and message per check, with the fix indented beneath."""
    lines = []
    for check in checks:
        lines.append(f"{MARKS[check.status]} {check.name}: {check.message}")
        if check.fix:
            lines.append(f"    fix: {check.fix}")
    problems = sum(check.status == "fail" for check in checks)
    warnings = sum(check.status == "warn" for check in checks)
    lines.append(f"{problems} problem(s), {warnings} warning(s)" if problems or warnings
                 else "All checks passed.")
    return "\n".join(lines)
