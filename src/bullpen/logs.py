"""Logging set-up: the seed's `[worker] …` lines as text, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_TAG = "tag"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {record.levelname:<7} [{record.name.removeprefix('bullpen.')}] " \
               f"{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name.removeprefix("bullpen."),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send bullpen's loggers to stderr in the chosen format; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger("bullpen")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def get(name: str) -> logging.Logger:
    """A logger whose tag shows in brackets: get('worker') logs as `[worker] …`."""
    return logging.getLogger(f"bullpen.{name}")
