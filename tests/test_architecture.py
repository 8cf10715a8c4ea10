"""The package's shape, checked from its imports: floors that only import downwards, no cycles,
no function-local import without a reason, and `bullmq` only inside the adapter."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import from its own floor or any floor below it, never above.
FLOORS: list[tuple[str, ...]] = [
    ("bullpen.errors", "bullpen.version"),
    ("bullpen.keyspace", "bullpen.logs", "bullpen.cron", "bullpen.job_ids", "bullpen.shown",
     "bullpen.redis_address", "bullpen.redis_tls", "bullpen.redis_url_parts",
     "bullpen.secret_strength",
     "bullpen.queue_names"),
    ("bullpen.settings",),
    ("bullpen.adapter",),
    ("bullpen.telemetry",),
    ("bullpen.embedded_files",),
    ("bullpen.embedded", "bullpen.redis_lock"),
    ("bullpen.redis_url",),
    ("bullpen.definitions",),
    ("bullpen.producer", "bullpen.reconcile", "bullpen.exports", "bullpen.runtime.context",
     "bullpen.runtime.series", "bullpen.runtime.stats", "bullpen.runtime.heartbeat",
     "bullpen.cancellation"),
    ("bullpen.tasks", "bullpen.schedules"),
    ("bullpen.loader",),
    ("bullpen.client", "bullpen.runtime"),
    ("bullpen.web", "bullpen.doctor"),
    ("bullpen.cli",),
    ("bullpen", "bullpen.__main__"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def floor_of(module: str) -> int:
    best, best_length = -1, -1
    for index, names in enumerate(FLOORS):
        for name in names:
            exact_only = name in ("bullpen", "bullpen.__main__")
            matches = module == name or (not exact_only and module.startswith(name + "."))
            if matches and len(name) > best_length:
                best, best_length = index, len(name)
    if best < 0:
        raise AssertionError(f"module {module} is on no floor: add it to FLOORS")
    return best


def _targets(node: ast.AST) -> list[str]:
    """The bullpen modules an import statement loads (a package's __init__ for its names)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("bullpen")]
    if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
        return []
    if not node.module.startswith("bullpen"):
        return []
    found = []
    for alias in node.names:
        submodule = f"{node.module}.{alias.name}"
        found.append(submodule if submodule in MODULES else node.module)
    return found


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return {target for node in ast.walk(tree) for target in _targets(node)
            if target != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_is_on_a_floor() -> None:
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_never_run_back_up(module: str) -> None:
    upward = [target for target in sorted(GRAPH[module]) if floor_of(target) > floor_of(module)]
    assert not upward, f"{module} (floor {floor_of(module)}) imports from above: " + ", ".join(
        f"{target} (floor {floor_of(target)})" for target in upward)


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target):], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target in GRAPH and not state.get(target):
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if not state.get(module):
            visit(module)


def test_function_local_imports_say_why() -> None:
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                line = lines[node.lineno - 1]
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                reason = re.search(r"#\s*noqa: PLC0415\s*-\s*\S", line) or above.startswith("#")
                if not reason:
                    unexplained.append(f"{module}:{node.lineno}: {line.strip()}")
    assert not unexplained, "function-local imports without a reason:\n" + "\n".join(unexplained)


def test_only_the_adapter_imports_the_port() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("bullpen.adapter"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "bullmq" or name.startswith("bullmq.") for name in names):
                offenders.append(module)
    assert not offenders, f"only bullpen.adapter may import bullmq: {sorted(set(offenders))}"


def test_module_names_are_unique_per_concept() -> None:
    """No two modules share a file name (three worker.py once hid which one was meant).

    Command modules are the exception: `cli/<noun>.py` holds the commands for that noun.
    """
    stems = [path.stem for module, path in MODULES.items() if path.name != "__init__.py"
             and path.stem != "__main__" and not module.startswith("bullpen.cli.")]
    repeated = sorted(stem for stem, group in itertools.groupby(sorted(stems))
                      if len(list(group)) > 1)
    assert not repeated, f"module names used twice: {repeated}"
