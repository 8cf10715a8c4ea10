"""Tasks and the registry: calling conventions, bad handlers."""

from __future__ import annotations

from typing import Any

import pytest

from bullpen.definitions.task import Registry, Task, isolated
from bullpen.errors import TaskError


def _none() -> None:
    return None


async def _data_ctx(data: Any, ctx: Any) -> None:
    return None


def test_calling_conventions_are_detected() -> None:
    assert Task.of("a", _none).arguments({"x": 1}, "ctx") == ()
    assert Task.of("b", _data_ctx).arguments({"x": 1}, "ctx") == ({"x": 1}, "ctx")
    assert Task.of("b", _data_ctx).is_async and not Task.of("a", _none).is_async


def test_handlers_with_too_many_arguments_or_not_callable_are_refused() -> None:
    def three(a: Any, b: Any, c: Any) -> None:
        return None

    with pytest.raises(TaskError, match="takes 3 arguments"):
        Registry({"x": three})
    with pytest.raises(TaskError, match="is not callable"):
        Registry({"x": 42})  # type: ignore[dict-item]


def test_isolated_handlers_are_recognised_and_still_callable_here() -> None:
    wrapped = isolated(_data_ctx, max_jobs_per_child=7)
    task = Task.of("c", wrapped)
    assert task.isolation is wrapped and task.isolation.max_jobs_per_child == 7
    assert task.is_async and task.arity == 2
    assert wrapped.__name__ == "_data_ctx" and wrapped.__wrapped__ is _data_ctx  # type: ignore[attr-defined]
    assert Task.of("a", _none).isolation is None
    assert isolated(_none)() is None


def test_isolated_refuses_what_a_child_process_cannot_import() -> None:
    def nested() -> None:
        return None

    with pytest.raises(TaskError, match=r"cannot be imported by a child process; define the "
                                        "handler at module level"):
        isolated(nested)
    with pytest.raises(TaskError, match="cannot be imported"):
        isolated(lambda: None)
    with pytest.raises(TaskError, match="max_jobs_per_child=0, expected an integer >= 1"):
        isolated(_none, max_jobs_per_child=0)
