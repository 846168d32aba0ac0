"""Rate limits per caller address, in memory (per server process)."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class RateLimiter:
    """At most `limit` requests per `seconds` from one address (per server process)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        if len(self._seen) > 10_000:  # forget the addresses gone quiet: memory stays bounded
            for quiet in [a for a, times in self._seen.items()
                          if not times or now - times[-1] > self.seconds]:
                del self._seen[quiet]
        seen = self._seen[address]
        while seen and now - seen[0] > self.seconds:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True
