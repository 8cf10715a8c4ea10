"""The job a handler runs: its hash as moveToActive returned it, a record built on first use,
and one ordered lane for its log lines and progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from bullpen.adapter.hooks import AttemptObserver
from bullpen.adapter.protocol import QueueCommands, refusal
from bullpen.adapter.records import JobRecord
from bullpen.errors import JobDecodeError


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def decode_json(job_id: str, field: str, raw: bytes | None, default: Any) -> Any:
    """A JSON field of the job hash; JobDecodeError (unrecoverable) when it cannot be read."""
    if raw is None:
        return default
    try:
        return json.loads(raw.decode())  # a str skips json's own encoding detection
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise JobDecodeError(
            f"job {job_id}: its {field} cannot be decoded as JSON ({reason}); it was written by "
            "a producer bullpen cannot read: fix the producer and enqueue the job again") from None


class ActiveJob:
    """A fetched job. The record is decoded on first use; writes go out in call order."""

    __slots__ = ("_commands", "_record", "_tail", "attempt", "fields", "id", "opts", "token")

    def __init__(self, job_id: str, fields: dict[bytes, bytes], token: str,
                 commands: QueueCommands, opts: dict[str, Any]) -> None:
        self.id = job_id
        self.fields = fields
        self.token = token
        self.opts = opts
        self._commands = commands
        self._record: JobRecord | None = None
        self._tail: asyncio.Future[None] | None = None
        # What observes this attempt (tracing, metrics); None when nothing does.
        self.attempt: AttemptObserver | None = None

    @property
    def record(self) -> JobRecord:
        """The job as bullpen shows it; raises JobDecodeError if its data is unreadable."""
        if self._record is None:
            self._record = self._build_record()
        return self._record

    def _build_record(self) -> JobRecord:
        get = self.fields.get
        name = get(b"name")
        # Fields a first attempt of a one-off job does not have are looked up only if present.
        failed_reason = get(b"failedReason")
        scheduler_id = get(b"rjk")
        progress = get(b"progress")
        return JobRecord(
            id=self.id, name=name.decode("utf-8", "replace") if name else "",
            data=decode_json(self.id, "data", get(b"data"), {}),
            attempts_made=self.attempts_made,
            attempts_allowed=int(self.opts.get("attempts") or 1),
            timestamp_ms=_int(get(b"timestamp")), processed_on_ms=_int(get(b"processedOn")) or None,
            finished_on_ms=None, delay_ms=_int(get(b"delay")),
            failed_reason=_text(failed_reason) if failed_reason else None,
            stacktrace=self.stacktrace(), return_value=None,
            progress=decode_json(self.id, "progress", progress, 0) if progress else 0,
            scheduler_id=_text(scheduler_id) if scheduler_id else None, state="active",
            processed_by=_text(get(b"pb")), raw_opts=dict(self.opts),
        )

    @property
    def attempts_made(self) -> int:
        return _int(self.fields.get(b"atm") or self.fields.get(b"attemptsMade"))

    @property
    def deferred_failure(self) -> str | None:
        """Set by the stalled check on a job stalled too often: fail it without running it."""
        return _text(self.fields.get(b"defa"))

    @property
    def scheduler_id(self) -> str | None:
        return _text(self.fields.get(b"rjk"))

    @property
    def processed_on_ms(self) -> int:
        return _int(self.fields.get(b"processedOn"))

    def stacktrace(self) -> list[str]:
        raw = self.fields.get(b"stacktrace")
        if not raw:
            return []
        try:
            trace = json.loads(raw)
        except (ValueError, RecursionError):
            return []
        return [str(item) for item in trace] if isinstance(trace, list) else []

    async def log(self, line: str) -> int:
        """Append a line to the job's BullMQ log (addLog: checks the job still exists)."""
        keep = self.opts.get("kl")
        return await self._in_order(lambda: self._commands.add_log(
            self.id, line, keep if isinstance(keep, int) else None), "addLog")

    async def update_progress(self, progress: Any) -> int:
        value = json.dumps(progress, separators=(",", ":"), allow_nan=False)
        return await self._in_order(lambda: self._commands.update_progress(self.id, value),
                                    "updateProgress")

    async def _in_order(self, write: Callable[[], Awaitable[int]], command: str) -> int:
        # Each write starts once the previous one has finished, so a write retried after
        # NOSCRIPT or a reconnect is never overtaken by a later one.
        previous = self._tail
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tail = done
        try:
            if previous is not None:
                await previous
            result = await write()
        finally:
            done.set_result(None)
        if result < 0:
            raise refusal(result, self.id, command)
        return result
