"""Per-agency rate limits: a token bucket per agency, charged one token per event.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second. A request
with ``n`` events takes ``n`` tokens or none: when fewer are left it is refused as a whole
(HTTP 429) with the number of seconds after which it would fit (``Retry-After``). A batch
larger than the bucket can never fit and is refused with 413 instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens; 0.0 if done, else the seconds until they would be there."""
        self.refill(now)
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class RateLimiter:
    """Buckets by agency; ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, agency: str, n: int, rate: float, burst: int) -> int:
        """0 if allowed, else whole seconds to wait (>= 1) for a Retry-After header."""
        now = self.clock()
        bucket = self._buckets.get(agency)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            tokens = burst if bucket is None else min(bucket.tokens, burst)
            bucket = self._buckets[agency] = TokenBucket(rate, burst, tokens, now)
        wait = bucket.take(n, now)
        return 0 if wait == 0.0 else max(1, math.ceil(wait))
