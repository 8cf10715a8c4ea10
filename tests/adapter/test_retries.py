"""Retry decisions and backoff delays, as Node BullMQ 6.7.0 computes them (pure, no Redis)."""

from __future__ import annotations

import pytest

from bullpen.adapter.retries import backoff_delay_ms, decide, normalize_backoff


@pytest.mark.parametrize(("attempts_made", "expected"), [(1, 1000), (2, 2000), (3, 4000),
                                                         (6, 32000)])
def test_exponential_doubles_from_the_delay(attempts_made: int, expected: int) -> None:
    assert backoff_delay_ms({"type": "exponential", "delay": 1000}, attempts_made) == expected


def test_exponential_rounds_halves_up_like_javascript() -> None:
    # Math.round(2^0 * 2.5) is 3 in JavaScript; Python's round() would give 2.
    assert backoff_delay_ms({"type": "exponential", "delay": 2.5}, 1) == 3


def test_fixed_is_the_delay_whatever_the_attempt() -> None:
    assert backoff_delay_ms({"type": "fixed", "delay": 750}, 5) == 750


@pytest.mark.parametrize("kind", ["fixed", "exponential"])
def test_jitter_spreads_the_delay_below_its_full_value(kind: str) -> None:
    backoff = {"type": kind, "delay": 1000, "jitter": 0.5}
    # floor(rand * d * j + d * (1 - j)): d*(1-j) at rand=0, just under d at rand->1.
    assert backoff_delay_ms(backoff, 1, rand=lambda: 0.0) == 500
    assert backoff_delay_ms(backoff, 1, rand=lambda: 0.999) == 999


def test_a_number_backoff_means_fixed() -> None:
    assert normalize_backoff(300) == {"type": "fixed", "delay": 300}
    assert normalize_backoff(None) is None and normalize_backoff(True) is None


def test_retries_while_attempts_remain_and_never_after_an_unrecoverable_error() -> None:
    opts = {"attempts": 3, "backoff": {"type": "exponential", "delay": 200}}
    assert decide(opts, 0, unrecoverable=False).delay_ms == 200
    assert decide(opts, 1, unrecoverable=False).delay_ms == 400
    assert not decide(opts, 2, unrecoverable=False).retry  # the third attempt was the last
    assert not decide(opts, 0, unrecoverable=True).retry
    assert not decide({}, 0, unrecoverable=False).retry  # no attempts option: one attempt


def test_no_backoff_retries_at_once_and_an_unknown_one_fails_with_a_reason() -> None:
    assert decide({"attempts": 2}, 0, unrecoverable=False) == decide(
        {"attempts": 2, "backoff": 0}, 0, unrecoverable=False)
    assert decide({"attempts": 2}, 0, unrecoverable=False).delay_ms == 0
    custom = decide({"attempts": 2, "backoff": {"type": "mine", "delay": 5}}, 0, False)
    assert not custom.retry and "unknown backoff type 'mine'" in custom.reason
