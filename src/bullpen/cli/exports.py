"""`bullpen cleanup-exports`: the manual export cleanup (works with no worker running)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import typer

from bullpen.adapter import QueueClient
from bullpen.cli.common import fail, print_json, settings, with_client
from bullpen.errors import CleanupLockedError
from bullpen.exports.cleanup import run_cleanup
from bullpen.exports.sweep import CleanupReport


def _count_entries(directory: Path) -> int | None:
    """How many entries the progress bar should expect (one quick streaming pass)."""
    try:
        with os.scandir(directory) as entries:
            return sum(1 for _ in entries)
    except OSError:
        return None


def _progress_bar(directory: Path, wanted: bool) -> tuple[AbstractContextManager[Any],
                                                          Callable[[int], None] | None]:
    total = _count_entries(directory) if wanted else None
    if not total:
        return nullcontext(), None
    bar = typer.progressbar(length=total, label="Scanning exports", file=sys.stderr)
    seen = [0]

    def advance(scanned: int) -> None:
        bar.update(max(scanned - seen[0], 0))
        seen[0] = scanned

    return bar, advance


def _print_summary(report: CleanupReport) -> None:
    verb = "Would delete" if report.dry_run else "Deleted"
    typer.echo(f"{verb} {report.deleted} expired exports, {report.bytes_freed} bytes "
               f"(scanned {report.scanned} entries, kept {report.kept}, "
               f"abandoned temp files {report.deleted_temp}, orphan metadata "
               f"{report.deleted_orphans}, vanished {report.vanished})")
    for reason, count in report.skipped.items():
        typer.echo(f"  skipped {count}: {reason}")
    for example in report.skipped_examples:
        typer.echo(f"    {example['name']}: {example['reason']}")
    for error in report.errors:
        typer.echo(f"  error: {error['name']}: {error['error']}")
    if report.error_count > len(report.errors):
        typer.echo(f"  … and {report.error_count - len(report.errors)} more errors")


def register(app: typer.Typer) -> None:
    @app.command("cleanup-exports")
    def cleanup_exports_command(
        dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted."),
        older_than: float | None = typer.Option(
            None, "--older-than", metavar="HOURS",
            help="Age limit in hours (default: EXPORT_MAX_FILE_AGE_HOURS)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Delete expired export files now; exit 1 if any entry could not be handled."""
        if older_than is not None and not older_than >= 0:  # also refuses nan
            # Checked here, not with typer's min=0, whose message does not show the value.
            fail(f"--older-than {older_than:g}: expected a number of hours >= 0 (leave it out "
                 "to use EXPORT_MAX_FILE_AGE_HOURS)", 2)
        loaded = settings()
        bar, advance = _progress_bar(loaded.export_path, sys.stderr.isatty() and not as_json)
        verb = "would delete" if dry_run else "deleted"

        def announce(name: str, size_bytes: int) -> None:
            # Not typer.echo: it flushed every line, a write per deleted file.
            if not as_json:
                sys.stdout.write(f"{verb} {name} ({size_bytes} bytes)\n")

        async def go(client: QueueClient) -> CleanupReport | str:
            try:
                with bar:
                    return await run_cleanup(loaded, client.redis, dry_run=dry_run,
                                             older_than_hours=older_than, on_progress=advance,
                                             on_expired=announce)
            except CleanupLockedError as exc:
                return str(exc)

        outcome = with_client(loaded, go)
        if isinstance(outcome, str):
            if as_json:
                print_json({"skipped": outcome})
            else:
                typer.echo(outcome)
            raise typer.Exit(0)
        if as_json:
            print_json(outcome.to_dict())
        else:
            _print_summary(outcome)
        raise typer.Exit(0 if outcome.ok else 1)
