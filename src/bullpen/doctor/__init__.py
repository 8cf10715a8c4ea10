"""`bullpen doctor`: the troubleshooting list as checks, each with a one-line fix."""

from __future__ import annotations

import asyncio

from bullpen.doctor import local, server
from bullpen.doctor.check import Check, failed, render, skip
from bullpen.errors import BullpenError
from bullpen.loader import Definitions, load_definitions

__all__ = ["Check", "failed", "render", "run_checks"]


def run_checks() -> list[Check]:
    """Every check, in the troubleshooting list's order; later ones skip when their basis failed."""
    settings_check, loaded = local.check_settings()
    if loaded is None:
        later = ("export token secret", *server.NAMES, "export directory")
        return [settings_check, *(skip(name, "settings are invalid") for name in later)]
    checks = [settings_check, *local.check_secrets(loaded)]
    declared: Definitions | BullpenError
    try:
        declared = load_definitions(loaded.bullpen_app)
    except BullpenError as exc:
        declared = exc
    checks += asyncio.run(server.check_server(loaded, declared))
    checks.append(local.check_export_dir(loaded))
    return checks
