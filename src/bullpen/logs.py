"""Logging set-up: `[worker] …` lines as text, or one JSON object per line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides that
# reorder what a terminal shows: each could forge a log line or hide text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with every control character escaped (`\\n`, `\\x1b`, `\\u202e`): safe to log or
    print when it came from outside (job ids, task names, file names, exception messages)."""
    return _UNSAFE.sub(_escape, str(text))


def _traceback(text: str) -> str:
    # A traceback keeps its line breaks; each line is escaped and indented, so a message
    # inside it can never pass for a log line of its own.
    return "\n".join("    " + printable(line) for line in text.split("\n"))


class _TextFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        # The stamp has one-second resolution: format it once a second, not once a line.
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        stamp = self._stamp
        line = f"{stamp} {record.levelname:<7} [{record.name.removeprefix('bullpen.')}] " \
               f"{printable(record.getMessage())}"
        if record.exc_info:
            line += "\n" + _traceback(self.formatException(record.exc_info))
        return line


# The current trace and span ids as fields ({"trace_id": …, "span_id": …}), or None.
TraceIds = Callable[[], dict[str, str] | None]


class _JsonFormatter(logging.Formatter):
    def __init__(self, trace_ids: TraceIds | None = None) -> None:
        super().__init__()
        self._trace_ids = trace_ids

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name.removeprefix("bullpen."),
            "message": printable(record.getMessage()),
        }
        if self._trace_ids is not None:
            # Formatted as the line is logged (emit), so in the logging code's own context.
            ids = self._trace_ids()
            if ids:
                payload.update(ids)
        if record.exc_info:
            payload["exception"] = _traceback(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


class _TurnBatchingHandler(logging.StreamHandler[TextIO]):
    """Writes the lines logged during one event-loop turn with one write at the end of it.

    A busy worker logs a line per job; one write (and flush) per line was about a quarter of its
    CPU per job. Off the loop (threads, start-up, shutdown) lines are written at once, and
    `flush()` (called by logging.shutdown) writes whatever is still held.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._held: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._held.append(self.format(record) + self.terminator)
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:
                self._write()
            elif not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._end_of_turn)
        except Exception:
            self.handleError(record)

    def _end_of_turn(self) -> None:
        self.acquire()
        try:
            self._scheduled = False
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self.stream.write(text)
            self.stream.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()


def configure(level: str = "INFO", fmt: str = "text", trace_ids: TraceIds | None = None) -> None:
    """Send bullpen's loggers to stderr in the chosen format; idempotent. With `trace_ids`
    (tracing on), JSON lines carry the trace and span ids of the code that logged them."""
    handler = _TurnBatchingHandler()
    handler.setFormatter(_JsonFormatter(trace_ids) if fmt == "json" else _TextFormatter())
    root = logging.getLogger("bullpen")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def get(name: str) -> logging.Logger:
    """A logger whose tag shows in brackets: get('worker') logs as `[worker] …`."""
    return logging.getLogger(f"bullpen.{name}")
