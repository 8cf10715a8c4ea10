"""When a failed attempt is retried, and after how long: Node BullMQ 6.7.0's rules and formulas."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """`retry` False means the job fails for good; `reason` explains a refusal to compute."""

    retry: bool
    delay_ms: int = 0
    reason: str = ""


FINAL = RetryDecision(False)


def normalize_backoff(backoff: Any) -> dict[str, Any] | None:
    """A number means a fixed delay, as in Node's Backoffs.normalize."""
    if isinstance(backoff, bool):
        return None
    if isinstance(backoff, int | float) and math.isfinite(backoff):
        return {"type": "fixed", "delay": backoff}
    return backoff if isinstance(backoff, dict) and backoff else None


def backoff_delay_ms(backoff: dict[str, Any], attempts_made: int,
                     rand: Callable[[], float] = random.random) -> int:
    """Node's built-in strategies, jitter included; `attempts_made` counts this failure.

    fixed: `delay`; exponential: `round(2^(attempts_made-1) * delay)`. With `jitter` j in
    (0, 1], a delay d becomes `floor(rand * d * j + d * (1 - j))`. Raises KeyError for a
    strategy other than these two.
    """
    kind = backoff.get("type")
    delay = float(backoff.get("delay") or 0)
    if kind == "fixed":
        base = delay
    elif kind == "exponential":
        base = float(_js_round(2 ** (attempts_made - 1) * delay))
    else:
        raise KeyError(kind)
    jitter = float(backoff.get("jitter") or 0)
    if jitter > 0:
        return math.floor(rand() * base * jitter + base * (1 - jitter))
    return int(base)


def decide(opts: dict[str, Any], attempts_made: int, unrecoverable: bool) -> RetryDecision:
    """Node's shouldRetryJob: retry while `attempts_made + 1 < attempts`, never after an
    unrecoverable error; a delay of 0 means "retry at once"."""
    attempts = opts.get("attempts") or 0
    if unrecoverable or not isinstance(attempts, int | float) or attempts_made + 1 >= attempts:
        return FINAL
    backoff = normalize_backoff(opts.get("backoff"))
    if backoff is None:
        return RetryDecision(True)
    try:
        delay = backoff_delay_ms(backoff, attempts_made + 1)
    except KeyError:
        return RetryDecision(False, reason=(
            f"not retried: unknown backoff type {backoff.get('type')!r} (bullpen computes "
            "'fixed' and 'exponential')"))
    return RetryDecision(True, delay) if delay != -1 else FINAL


def _js_round(value: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round goes to even)."""
    return math.floor(value + 0.5)
