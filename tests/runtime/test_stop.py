"""Stop requests: copies of one signal from several senders are one request; a later one forces."""

from __future__ import annotations

from bullpen.runtime.stop import SAME_REQUEST_WINDOW_S, StopRequests


def test_copies_within_the_window_are_one_request_and_a_later_one_is_the_second() -> None:
    now = [100.0]
    requests = StopRequests(clock=lambda: now[0])
    assert not requests.requested
    assert requests.register() == 1
    now[0] += SAME_REQUEST_WINDOW_S / 2
    assert requests.register() == 0
    assert requests.requested
    now[0] += SAME_REQUEST_WINDOW_S
    assert requests.register() == 2
