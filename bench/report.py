"""Rendering the results as Markdown between markers in docs/benchmarks.md (prose kept)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _version(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False,
                              timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def machine(command: str) -> list[str]:

    return [
        f"Rerun with `{command}` (about 30 minutes, most of it writing cleanup's 200,000 "
        "files; a private redis-server on a free port, never the shared one).",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Node {_version(['node', '--version'])}, "
        f"{_version(['redis-server', '--version']).split(' sha=')[0]}.",
        "",
    ]


SIDE_NAMES = {"node": "Node BullMQ 6.7.0", "bullpen": "bullpen",
              "bullpen-p2": "bullpen `--processes 2`", "port": "the port, tuned (hiredis + uvloop)"}


def throughput(results: dict[str, dict[str, dict[str, float]]], label: str) -> list[str]:
    """The issue's table: c=1 and c=50 jobs/s with ratios to Node, CPU per job, RSS, calls."""
    one, fifty = results["1"], results["50"]
    lines = [f"### Worker throughput: {label}", "",
             "| | c=1 jobs/s | c=50 jobs/s | worker CPU ms/job (c=1 / c=50) | RSS MB (per "
             "process) | EVALSHA/job (c=1 / c=50) | Redis cmds/job |",
             "|---|---|---|---|---|---|---|"]
    for side, name in SIDE_NAMES.items():
        if side not in one:
            continue
        low, high = one[side], fifty[side]
        lines.append(
            f"| {name} | {low['jobs_per_s']:,.0f} "
            f"({_ratio(low['jobs_per_s'], one['node']['jobs_per_s'])}) | "
            f"{high['jobs_per_s']:,.0f} ({_ratio(high['jobs_per_s'], fifty['node']['jobs_per_s'])})"
            f" | {low['cpu_ms_per_job']:.3f} / {high['cpu_ms_per_job']:.3f} | "
            f"{high['peak_rss_mb']:.0f} ({high['peak_rss_per_process_mb']:.0f}) | "
            f"{low['evalsha_per_job']:.3f} / {high['evalsha_per_job']:.3f} | "
            f"{high['commands_per_job']:.1f} |")
    return [*lines, ""]


def enqueue(results: dict[str, dict[str, float]]) -> list[str]:
    ours, node = results["bullpen"], results["node"]
    return ["### Enqueue (jobs/s)", "", "| kind | bullpen | Node | ratio |", "|---|---|---|---|",
            *(f"| {kind} | {ours[kind]:,.0f} | {node[kind]:,.0f} | "
              f"{_ratio(ours[kind], node[kind])} |" for kind in ("single", "bulk")), ""]


def lateness(results: dict[str, dict[str, float]], title: str) -> list[str]:
    lines = [f"### {title}", "", "| side | ticks/jobs | p50 ms | p99 ms | max ms |",
             "|---|---|---|---|---|"]
    for side, row in results.items():
        lines.append(f"| {side} | {row['ticks']:.0f} | {row['p50']:.1f} | {row['p99']:.1f} | "
                     f"{row['max']:.1f} |")
    return [*lines, ""]


def cleanup(results: dict[str, dict[str, float]]) -> list[str]:
    ours, find = results["bullpen"], results["find"]
    return ["### Cleanup (200,000 files, half expired)", "",
            "| side | wall s | peak RSS MB |", "|---|---|---|",
            f"| `bullpen cleanup-exports` | {ours['wall_s']:.2f} | {ours['rss_mb']:.1f} |",
            f"| `find -mmin +1440 -delete` | {find['wall_s']:.2f} | {find['rss_mb']:.1f} |",
            f"| ratio | {_ratio(ours['wall_s'], find['wall_s'])} | |", ""]


def export(results: dict[str, float]) -> list[str]:
    task, plain = results["exports.create_s"], results["csv.writer_s"]
    return ["### Export (1,000,000 rows to CSV)", "", "| side | s | rows/s |", "|---|---|---|",
            f"| `exports.create` task | {task:.2f} | {1e6 / task:,.0f} |",
            f"| plain `csv.writer` loop | {plain:.2f} | {1e6 / plain:,.0f} |",
            f"| speed ratio (task vs plain) | {_ratio(plain, task)} | |", ""]


def write(path: Path, lines: list[str]) -> None:
    """Replace the generated block in `path` (or create the file with just that block)."""
    block = "\n".join([START, *lines, END])
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


def render(command: str, sections: dict[str, Any]) -> list[str]:
    lines = machine(command)
    for key, title in (("throughput", "unpinned (2 CPUs shared by Redis, producer and worker)"),
                       ("throughput_pinned", "pinned (Redis and the harness on CPU 0, the "
                                             "worker on CPU 1)")):
        if key in sections:
            lines += throughput(sections[key], title)
    if "enqueue" in sections:
        lines += enqueue(sections["enqueue"])
    if "cron" in sections:
        lines += lateness(sections["cron"], "Cron lateness (1-second schedule)")
    if "cleanup" in sections:
        lines += cleanup(sections["cleanup"])
    if "lateness" in sections:
        lines += lateness(sections["lateness"], "Other jobs' pick-up lateness, one worker")
    if "export" in sections:
        lines += export(sections["export"])
    if "topologies" in sections:
        lines += ["", "## Redis Cluster: three tagged queues on 1 master and on 3", "",
                  "5,000 no-op jobs per queue, one `bullpen worker --processes 2` on all three "
                  "(`python -m bench.topologies`).", "", sections["topologies"]]
    return lines
