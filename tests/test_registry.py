"""The task registry: defaults, app extension, calling conventions, bad handlers."""

from __future__ import annotations

from typing import Any

import pytest

from bullpen.errors import TaskError
from bullpen.registry import Registry, Task, load_registry


def test_defaults_are_the_seed_tasks() -> None:
    assert load_registry(None).names() == ["exports.cleanup", "exports.create", "health.check"]


def test_app_tasks_extend_the_defaults(app_env: dict[str, str]) -> None:
    registry = load_registry("sample_app")
    assert "test.record" in registry and "health.check" in registry


def test_a_missing_app_module_is_a_clear_error() -> None:
    with pytest.raises(TaskError, match=r"cannot import 'no_such_app_xyz\.tasks'"):
        load_registry("no_such_app_xyz")


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
