"""Job values as the CLI, dashboard and API show them: whatever Redis holds, bounded in depth and
size, so a job nested a thousand levels deep or megabytes large still renders."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

MAX_SHOWN_DEPTH = 64
MAX_SHOWN_CHARS = 200_000


def depth(value: Any) -> int:
    """How deeply dicts and lists nest in `value` (a scalar is 0); no recursion, any depth."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _empty(container: Any) -> Any:
    return {} if isinstance(container, dict) else []


def bounded(value: Any, max_depth: int = MAX_SHOWN_DEPTH) -> Any:
    """A copy of `value` in which containers deeper than `max_depth` are replaced by a note."""
    if not isinstance(value, dict | list):
        return value
    root = _empty(value)
    stack = [(value, root, 1)]
    while stack:
        source, target, level = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            copy = item
            if isinstance(item, dict | list):
                if level >= max_depth:
                    copy = f"… (nested deeper than {max_depth} levels; not shown)"
                else:
                    copy = _empty(item)
                    stack.append((item, copy, level + 1))
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


def as_text(value: Any, *, indent: int | None = 2, max_chars: int = MAX_SHOWN_CHARS) -> str:
    """`value` as JSON text (depth-bounded), cut at `max_chars` with a note of what is left."""
    separators = None if indent else (",", ":")
    text = json.dumps(bounded(value), indent=indent, separators=separators, default=str,
                      ensure_ascii=False, sort_keys=indent is not None)
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n… ({len(text) - max_chars} more characters not shown)"


def fields_of(record: Any) -> dict[str, Any]:
    """A dataclass's fields, each value depth-bounded (`dataclasses.asdict` recurses into the
    job's data and fails on deep nesting)."""
    return {field.name: bounded(getattr(record, field.name))
            for field in dataclasses.fields(record)}
