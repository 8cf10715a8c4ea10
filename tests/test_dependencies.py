"""pyproject's lower bounds admit no version with a published advisory for what bullpen uses."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers import REPO

# package -> (first fixed version, the advisories it fixes); docs/security.md lists the same.
FIXED = {
    "starlette": ("1.3.1", "CVE-2024-47874, CVE-2025-54121, CVE-2025-62727, CVE-2026-48710, "
                           "CVE-2026-48818, CVE-2026-54282, CVE-2026-54283"),
    "python-multipart": ("0.0.30", "CVE-2024-24762, CVE-2024-53981, CVE-2026-24486, "
                                   "CVE-2026-42561, CVE-2026-53537, CVE-2026-53538, "
                                   "CVE-2026-53539"),
    "jinja2": ("3.1.6", "CVE-2024-22195, CVE-2024-34064, CVE-2024-56201, CVE-2024-56326, "
                        "CVE-2025-27516"),
    "h11": ("0.16.0", "CVE-2025-43859"),
    "itsdangerous": ("2.2.0", "none known; the version tested"),
}


def _lower_bounds() -> dict[str, Version]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lows = [Version(spec.version) for spec in requirement.specifier
                if spec.operator in (">=", "==", "~=")]
        bounds[requirement.name.lower()] = max(lows) if lows else Version("0")
    return bounds


def test_lower_bounds_are_past_every_published_advisory() -> None:
    bounds = _lower_bounds()
    too_low = {name: f"{bounds.get(name)} < {fixed} ({advisories})"
               for name, (fixed, advisories) in FIXED.items()
               if bounds.get(name, Version("0")) < Version(fixed)}
    assert not too_low, too_low
