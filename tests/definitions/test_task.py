"""Tasks and the registry: calling conventions, bad handlers."""

from __future__ import annotations

from typing import Any

import pytest

from bullpen.definitions.task import Registry, Task
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
