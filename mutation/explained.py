"""Surviving mutants that were examined and explained, kept in mutation/explained.toml.

Each entry names a mutant (mutmut's name without the module prefix), a piece of the changed
line it was explained for, and why no test can or should fail on it. mutmut numbers a
function's mutants in order, so an edit to that function renumbers them: an entry whose
piece is no longer in the mutant's diff is reported as stale, and the survivor as unexplained.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXPLAINED = Path(__file__).resolve().parent / "explained.toml"


@dataclass(frozen=True)
class Explanation:
    change: str  # text found on the mutant's added lines
    why: str


@dataclass
class Verdict:
    explained: dict[str, str]  # mutant -> why
    unexplained: list[str]
    stale: list[str]  # entries whose mutant survives with another change


def load(module: str, path: Path = EXPLAINED) -> dict[str, Explanation]:
    """The module's explanations, keyed by short mutant name."""
    table = tomllib.loads(path.read_text()).get(module, {}) if path.exists() else {}
    return {name: Explanation(entry["change"], entry["why"]) for name, entry in table.items()}


def short_name(mutant: str) -> str:
    """`bullpen.exports.sweep.x_shown__mutmut_8` -> `x_shown__mutmut_8`."""
    head, _, tail = mutant.rpartition(".x")
    return "x" + tail if head else mutant


def added_lines(mutmut: str, where: Path, mutant: str) -> str:
    """The lines the mutant adds, from `mutmut show`."""
    shown = subprocess.run([mutmut, "show", mutant], cwd=where, capture_output=True, text=True,
                           check=False).stdout
    return "\n".join(line[1:] for line in shown.splitlines()
                     if line.startswith("+") and not line.startswith("+++"))


def judge(survivors: list[str], entries: dict[str, Explanation],
          added: Callable[[str], str]) -> Verdict:
    """Split the survivors into explained ones and the rest; `added(mutant)` gives the lines
    the mutant adds (`added_lines`)."""
    verdict = Verdict({}, [], [])
    for mutant in survivors:
        entry = entries.get(short_name(mutant))
        if entry is None:
            verdict.unexplained.append(mutant)
        elif entry.change in added(mutant):
            verdict.explained[mutant] = entry.why
        else:
            verdict.stale.append(mutant)
            verdict.unexplained.append(mutant)
    return verdict
