"""Stack traces made readable: the app's own frames in view, runs of bullpen's, BullMQ's and the
standard library's frames folded away. Python tracebacks and Node stacks alike."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

APP, MACHINERY = "app", "machinery"
_PY_FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line \d+')
_NODE_FRAME = re.compile(r"^\s+at (?:.*\()?(?P<path>[^()\s]+?)(?::\d+){0,2}\)?\s*$")
_STDLIB = re.compile(r"^(node:|internal/|<frozen |<string>)|[/\\]lib[/\\]python3\.\d+[/\\]"
                     r"(?!.*(site|dist)-packages)")
_BULLPEN = re.compile(r"[/\\](?:(?:site|dist)-packages|src|node_modules)[/\\]"
                      r"(?:bullpen|bullmq)[/\\]")
_OWN_DIR = str(Path(__file__).resolve().parents[1])


def kind_of(path: str) -> str:
    """APP for the application's code (and its third-party libraries), else MACHINERY."""
    if path.startswith(_OWN_DIR) or _BULLPEN.search(path) or _STDLIB.search(path):
        return MACHINERY
    return APP


@dataclass(slots=True)
class Block:
    """Consecutive lines of one kind: text (headers, the exception), app or machinery frames."""

    kind: str  # "text", APP or MACHINERY
    lines: list[str] = field(default_factory=list)
    frames: int = 0


@dataclass(slots=True)
class Trace:
    blocks: list[Block]
    raised_in: str | None  # the innermost app frame's first line
    error: str  # the last line: the exception and its message

    @property
    def folded(self) -> int:
        return sum(block.frames for block in self.blocks if block.kind == MACHINERY)


def _frame_path(line: str) -> str | None:
    for pattern in (_PY_FRAME, _NODE_FRAME):
        found = pattern.match(line)
        if found:
            return found.group("path")
    return None


def fold(text: str) -> Trace:
    """Split a trace into blocks; a frame keeps its indented source lines with it."""
    blocks: list[Block] = []
    raised_in, in_frame = None, False
    for line in text.rstrip("\n").splitlines():
        path = _frame_path(line)
        if path is not None:
            kind, in_frame = kind_of(path), line.lstrip().startswith("File ")
            if kind == APP:
                raised_in = line.strip()
        elif in_frame and line.startswith("    "):
            kind = blocks[-1].kind
        else:
            kind, in_frame = "text", False
        if not blocks or blocks[-1].kind != kind:
            blocks.append(Block(kind))
        blocks[-1].lines.append(line)
        blocks[-1].frames += path is not None
    error = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return Trace(blocks, raised_in, error.strip())
