"""Slows down credential guessing: a few failed checks per client, then one per interval.

A token bucket per client address: BURST failures at once, then one more each REFILL_S.
While a client's bucket is empty every credential it sends is refused unchecked (429), so an
answer never tells a good guess from a bad one. A signed-in session cookie is not a
credential check and keeps working. Kept in memory, per web process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

BURST = 10
REFILL_S = 6.0
MAX_CLIENTS = 10_000


class FailureThrottle:
    """Counts failed credential checks per client and says how long a client must wait."""

    def __init__(self, burst: int = BURST, refill_s: float = REFILL_S,
                 max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, since = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill_s)

    def retry_after_s(self, client: str) -> float:
        """0 when `client` may try a credential now, else the seconds until it may."""
        tokens = self._tokens(client, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) * self.refill_s

    def failed(self, client: str) -> None:
        now = self._clock()
        self._buckets[client] = (self._tokens(client, now) - 1, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)  # the longest-quiet client forgets its failures
