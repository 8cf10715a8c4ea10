"""The README's "Use it from your app" section runs: each Python block is executed against Redis
and a real worker running examples/myapp, or, when it names a file, found verbatim in that file
(whose own test runs it)."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from bullpen import SyncClient
from tests.helpers import REPO
from tests.helpers.processes import running_worker

SECTION = "## Use it from your app"
FILE_BLOCK = re.compile(r"# (examples/\S+\.py)\n")


def _blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start: text.index("\n## ", start + len(SECTION))]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_the_section_has_the_clients_the_exports_and_the_mount() -> None:
    text = "\n".join(_blocks())
    for needle in ("Client()", "SyncClient()", "exports.create", "exports.download_url",
                   "exports.request", "exports.serve", "create_app(authenticate="):
        assert needle in text, needle


@pytest.mark.parametrize("block", [b for b in _blocks() if FILE_BLOCK.match(b)],
                         ids=lambda block: FILE_BLOCK.match(block).group(1))  # type: ignore[union-attr]
def test_a_quoted_block_is_verbatim_in_its_file(block: str) -> None:
    path = FILE_BLOCK.match(block).group(1)  # type: ignore[union-attr]
    quoted = _code_lines(block)[1:]
    source = _code_lines((REPO / path).read_text(encoding="utf-8"))
    starts = [i for i, line in enumerate(source) if line == quoted[0]]
    assert any(source[i: i + len(quoted)] == quoted for i in starts), (
        f"README block no longer matches {path}: update one or the other")


def test_the_runnable_blocks_run(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    examples = str(REPO / "examples")
    values = {**env, "BULLPEN_APP": "myapp", "PYTHONPATH": os.pathsep.join(
        filter(None, [examples, os.environ.get("PYTHONPATH")]))}
    monkeypatch.setenv("BULLPEN_APP", "myapp")
    monkeypatch.syspath_prepend(examples)
    runnable = [block for block in _blocks() if not FILE_BLOCK.match(block)]
    assert len(runnable) == 4
    output = io.StringIO()
    namespace: dict[str, object] = {"__name__": "readme"}
    with running_worker(values) as worker, contextlib.redirect_stdout(output):
        for block in runnable:
            exec(compile(block, "README.md", "exec"), namespace)
        SyncClient.default().close()
    printed = output.getvalue()
    assert "Traceback" not in worker.output, worker.output
    assert printed.count("{'sent': 1}") == 2, printed
    assert "['warmed 10 keys', 'warmed 20 keys']" in printed
    assert "completed 1" in printed and "invoice 42 sent" in printed
    assert "orders.csv 22 " in printed
    assert re.search(r"https://app\.example\.com/admin/jobs/exports/\S+", printed)
    assert re.search(r"^2 /exports/\S+$", printed, re.MULTILINE), printed
