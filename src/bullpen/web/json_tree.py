"""A job's data or result as a collapsible tree of <details> elements: no script needed, any
depth (iterative), bounded in size, every key and value escaped."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

from bullpen.shown import bounded

MAX_NODES = 2000
MAX_STRING_CHARS = 5000
OPEN_LEVELS = 2


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= MAX_STRING_CHARS else (
            value[:MAX_STRING_CHARS] + f"… ({len(value) - MAX_STRING_CHARS:,} more characters)")
        return f'<span class="j-str">{escape(json.dumps(shown, ensure_ascii=False))}</span>'
    if value is None or isinstance(value, bool):
        return f'<span class="j-lit">{json.dumps(value)}</span>'
    if isinstance(value, int | float):
        return f'<span class="j-num">{escape(json.dumps(value))}</span>'
    return f'<span class="j-str">{escape(str(value))}</span>'


def _size(value: dict[str, Any] | list[Any]) -> str:
    if isinstance(value, dict):
        return f"{{…}} {len(value)} key{'s' if len(value) != 1 else ''}"
    return f"[…] {len(value)} item{'s' if len(value) != 1 else ''}"


def _key(key: Any) -> str:
    if isinstance(key, int):
        return f'<span class="j-idx">{key}</span>: '
    return f'<span class="j-key">{escape(json.dumps(str(key), ensure_ascii=False))}</span>: '


def json_tree(value: Any) -> Markup:
    """The tree; past MAX_NODES values the rest is summarised (the raw JSON shows it all)."""
    if not isinstance(value, dict | list):
        return Markup(f'<div class="json-tree">{_scalar(value)}</div>')
    out: list[str] = ['<div class="json-tree">']
    # Work items: (key or None, value, level), or a closing string to emit as is.
    stack: list[tuple[Any, Any, int] | str] = [(None, bounded(value), 0)]
    nodes = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        key, current, level = item
        nodes += 1
        if nodes > MAX_NODES:
            out.append(f'<div class="muted">… more values not shown here ({MAX_NODES:,} '
                       'shown); see the raw JSON</div>')
            stack = [entry for entry in stack if isinstance(entry, str)]
            continue
        label = _key(key) if key is not None else ""
        if not isinstance(current, dict | list) or not current:
            shown = _scalar(current) if not isinstance(current, dict | list) else (
                "{}" if isinstance(current, dict) else "[]")
            out.append(f"<div>{label}{shown}</div>")
            continue
        is_open = " open" if level < OPEN_LEVELS else ""
        out.append(f"<details{is_open}><summary>{label}<span class=\"muted\">"
                   f"{escape(_size(current))}</span></summary><div class=\"j-body\">")
        stack.append("</div></details>")
        children = list(current.items()) if isinstance(current, dict) else list(
            enumerate(current))
        if len(children) > MAX_NODES:
            stack.append(f'<div class="muted">… {len(children) - MAX_NODES:,} more</div>')
            children = children[:MAX_NODES]
        stack.extend((child_key, child, level + 1) for child_key, child in reversed(children))
    out.append("</div>")
    return Markup("".join(out))
