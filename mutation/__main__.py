"""`make mutation`: mutmut over the core modules, one bounded run per module, then the counts.

Each module runs in its own scratch copy of the project (var/mutation/<name>) whose
pyproject holds the mutmut settings for that module only: the file to mutate and the tests
that exercise it in-process. mutmut then runs, for each mutant, only the tests that reached
the mutated function, so a module finishes in minutes. Usage:

    python -m mutation [--budget-s S] [--jobs N] [--only PATTERN] [--report-only] [NAME ...]

It exits 1 when a survivor is neither killed nor explained in mutation/explained.toml.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mutation import explained

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "var" / "mutation"


@dataclass(frozen=True)
class Target:
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    budget_s: int  # the whole run (generation, stats, mutants) is stopped after this
    # Tests left out (the suite runs them): those that wait seconds to measure lateness would
    # make each surviving mutant cost half a minute; some cannot run under mutmut.
    deselect: tuple[str, ...] = ()


SLOW_ADAPTER_TESTS = (
    "tests/adapter/test_consumer.py::test_idle_worker_wakes_for_a_job_due_after_the_socket_timeout",
    "tests/adapter/test_consumer.py::test_due_jobs_start_within_milliseconds_not_rounded_seconds",
    "tests/adapter/test_fast_path.py::test_delayed_jobs_start_on_time_not_on_the_server_timer_tick",
)
TARGETS = {
    "reconcile": Target(("src/bullpen/reconcile.py",),
                        ("tests/test_reconcile.py", "tests/web/test_web_probes_metrics.py",
                         "tests/web/test_web_api.py"), 900),
    # Isolated handlers run in spawned children, which re-run mutmut's own script and fail.
    "dispatch": Target(("src/bullpen/runtime/dispatch.py",), ("tests/runtime/test_dispatch.py",),
                       600, ("tests/runtime/test_dispatch.py::"
                             "test_an_isolated_handler_runs_in_a_child_process_with_the_job",)),
    # bullpen's consume loop (the old adapter/worker): start and close, and each job's run.
    "worker": Target(("src/bullpen/adapter/consumer.py", "src/bullpen/adapter/runner.py"),
                     ("tests/adapter", "tests/runtime/test_dispatch.py"), 1200,
                     (*SLOW_ADAPTER_TESTS, "tests/runtime/test_dispatch.py::"
                      "test_an_isolated_handler_runs_in_a_child_process_with_the_job")),
    "sweep": Target(("src/bullpen/exports/sweep.py",),
                    ("tests/exports/test_sweep.py", "tests/exports/test_cleanup.py"), 900),
    "tokens": Target(("src/bullpen/exports/tokens.py",), ("tests/exports/test_tokens.py",), 600),
}


def _config(target: Target) -> str:
    def listed(values: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(f'"{value}"' for value in values) + "]"

    deselected = [arg for test in target.deselect for arg in ("--deselect", test)]
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = {listed(target.sources)}",
        f"pytest_add_cli_args_test_selection = {listed(target.tests)}",
        # The suite's own per-test timeout would cut a slow mutant short as a failure (a kill).
        "pytest_add_cli_args = " + listed(
            ["-p", "no:cacheprovider", "-o", "timeout=60", "-q", *deselected]),
        # A mutant that hangs a test (a loop that never exits) is called a timeout after 3
        # times the tests' clean duration, not mutmut's default 15.
        "timeout_multiplier = 3.0",
        "use_git_change_detection = false",
        "",
    ])


def _prepare(name: str, target: Target) -> Path:
    """A fresh copy of what the tests need, with the module's settings in its pyproject."""
    where = SCRATCH / name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    shutil.copytree(ROOT / "src", where / "src")
    ignored = shutil.ignore_patterns("node", "__pycache__", ".pytest_cache")
    shutil.copytree(ROOT / "tests", where / "tests", symlinks=True, ignore=ignored)
    pyproject = (ROOT / "pyproject.toml").read_text()
    (where / "pyproject.toml").write_text(pyproject + _config(target))
    return where


def _mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def _run(name: str, target: Target, budget_s: int, jobs: int, only: list[str]) -> None:
    where = _prepare(name, target)
    mutmut = _mutmut()
    log = where / "mutmut.log"
    started = time.monotonic()
    with log.open("w") as out:
        # A session of its own: at the budget, mutmut and the test process it forked stop too.
        run = subprocess.Popen([mutmut, "run", "--max-children", str(jobs), *only], cwd=where,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            run.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait()
            print(f"{name}: stopped after its budget of {budget_s} s; "
                  "mutants not reached count as 'not checked'")
    print(f"{name}: {time.monotonic() - started:.0f} s, log in {log.relative_to(ROOT)}")


def _results(where: Path) -> dict[str, list[str]]:
    results = subprocess.run([_mutmut(), "results", "--all", "true"], cwd=where,
                             capture_output=True, text=True, check=False).stdout
    by_status: dict[str, list[str]] = collections.defaultdict(list)
    for line in results.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if mutant:
            by_status[status].append(mutant)
    return by_status


def _report(name: str) -> int:
    """Print the module's counts and its unexplained survivors; how many there are."""
    where = SCRATCH / name
    by_status = _results(where)
    counts = ", ".join(f"{len(mutants)} {status}" for status, mutants in sorted(by_status.items()))
    print(f"{name}: {counts or 'no results (see the log)'}")
    verdict = explained.judge(by_status.get("survived", []), explained.load(name),
                              lambda mutant: explained.added_lines(_mutmut(), where, mutant))
    print(f"  {len(verdict.explained)} survivors explained in mutation/explained.toml")
    for mutant in verdict.stale:
        print(f"  stale explanation (the mutant changed since): {explained.short_name(mutant)}")
    if verdict.unexplained:
        print(f"  unexplained survivors (their diffs: cd var/mutation/{name} && "
              "../../../.venv/bin/mutmut show NAME):")
    for mutant in verdict.unexplained:
        print(f"    {mutant}")
    return len(verdict.unexplained)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(TARGETS))
    parser.add_argument("--budget-s", type=int, help="each module's time budget (default: its own)")
    # One child by default: the tests measure timings that a loaded machine would stretch.
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="test only the mutants whose names match (fnmatch), e.g. "
                             "'bullpen.adapter.runner.*_fail*'; the others stay 'not checked'")
    parser.add_argument("--report-only", action="store_true",
                        help="report the last run's results again (after editing explained.toml)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(TARGETS))
    if unknown:
        print(f"Unknown module(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
        return 2
    unexplained = 0
    for name in args.names or list(TARGETS):
        target = TARGETS[name]
        if not args.report_only:
            _run(name, target, args.budget_s or target.budget_s, args.jobs, args.only)
        unexplained += _report(name)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
