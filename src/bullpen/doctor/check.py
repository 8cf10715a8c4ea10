"""One doctor finding (what, how it went, the fix) and how findings are printed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from bullpen.logs import printable

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


def failed(checks: list[Check]) -> bool:
    return any(check.status == "fail" for check in checks)


def render(checks: list[Check]) -> str:
    """Human output: a mark and message per check, with the fix indented beneath."""
    lines = []
    for check in checks:
        # Messages quote job names, ids and failure reasons: escaped, they cannot add a line.
        lines.append(f"{MARKS[check.status]} {check.name}: {printable(check.message)}")
        if check.fix:
            lines.append(f"    fix: {printable(check.fix)}")
    problems = sum(check.status == "fail" for check in checks)
    warnings = sum(check.status == "warn" for check in checks)
    lines.append(f"{problems} problem(s), {warnings} warning(s)" if problems or warnings
                 else "All checks passed.")
    return "\n".join(lines)
