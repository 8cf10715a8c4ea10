"""Queue names and `NAME[=CONCURRENCY]` specs, as settings, the CLI and declarations read them."""

from __future__ import annotations

import pytest

from bullpen.errors import QueueNameError, SettingsError
from bullpen.queue_names import QueueSpec, check_queue_name, parse_queue_spec, parse_queue_specs
from bullpen.settings import load_settings


@pytest.mark.parametrize("name", ["exports", "dojo-slims", "a.b_c~1", "émails"])
def test_names_bullmq_and_the_dashboard_can_use_are_accepted(name: str) -> None:
    assert check_queue_name(name, "test") == name


@pytest.mark.parametrize("name", ["", "a:b", "a b", "a,b", "a=b", "a/b", "x" * 201, 7, None])
def test_a_name_that_would_break_keys_lists_or_paths_is_refused_with_the_value(
        name: object) -> None:
    with pytest.raises(QueueNameError, match=r"^here: queue name .* cannot be used; expected"):
        check_queue_name(name, "here")


def test_a_spec_names_a_queue_and_optionally_its_concurrency() -> None:
    assert parse_queue_spec("exports", "--queue") == QueueSpec("exports")
    assert parse_queue_spec(" exports=2 ", "--queue") == QueueSpec("exports", 2)
    assert str(QueueSpec("exports", 2)) == "exports=2" and str(QueueSpec("a")) == "a"


@pytest.mark.parametrize("text", ["exports=", "exports=0", "exports=two", "exports=-1",
                                  "exports=10001"])
def test_a_bad_concurrency_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(QueueNameError, match=r"expected NAME or NAME=N .* such as 'exports=2'"):
        parse_queue_spec(text, "--queue")


def test_a_queue_named_twice_is_refused() -> None:
    with pytest.raises(QueueNameError, match="queue 'a' is named twice"):
        parse_queue_specs(["a", "b", "a=3"], "--queue")


def test_worker_queues_defaults_to_the_default_queue(offline_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    default = offline_env["WORKER_DEFAULT_QUEUE"]
    assert load_settings().queue_specs == [QueueSpec(default)]
    monkeypatch.setenv("WORKER_QUEUES", f"{default}, exports=2")
    assert load_settings().queue_specs == [QueueSpec(default), QueueSpec("exports", 2)]


def test_a_bad_worker_queues_setting_stops_start_up_naming_the_variable(
        offline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_QUEUES", "fast,slow=lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "WORKER_QUEUES='fast,slow=lots'" in str(caught.value)
    assert "'slow=lots' has concurrency 'lots'" in str(caught.value)
