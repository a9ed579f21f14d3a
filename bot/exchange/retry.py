"""How long and how often each kind of Bybit call is tried again: one policy per kind, here.

- `read`: balances, positions, orders, executions, instruments: a few tries with bounded
  exponential backoff (a command that cannot read says so).
- `entry`: opening orders: a short budget; a late entry is worse than none.
- `close`: reduce-only and closing orders: never give up before CLOSE_DEADLINE_SECONDS.
- `lookup`: finding an order Bybit accepted but that is not visible yet: ORDER_LOOKUP_SECONDS
  (closes: the close deadline), then "accepted, outcome unknown".

Every policy honours Bybit's rate limit: after a 10006 the next try waits until the
`X-Bapi-Limit-Reset-Timestamp` the reply carried (`RateLimitError.reset_ms`), not a guess.
An order is never re-sent by a policy: the adapter looks its orderLinkId up before any re-send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RetryPolicy", "policies"]


@dataclass(frozen=True)
class RetryPolicy:
    kind: str
    attempts: int            # tries at most (0: as many as the budget allows)
    budget_s: float          # give up once this much time went by
    base_delay: float        # first pause; doubles per try up to max_delay
    max_delay: float

    def delay(self, attempt: int, err: BaseException | None = None, *, now_ms: int | None = None) -> float:
        """The pause before try `attempt + 2` (attempt 0 just failed). A rate limit waits for its reset."""
        reset_ms = getattr(err, "reset_ms", None)
        if reset_ms:
            now = int(time.time() * 1000) if now_ms is None else now_ms
            return min(max(0.05, (int(reset_ms) - now) / 1000.0), max(self.max_delay, 10.0))
        return min(self.max_delay, self.base_delay * 2.0 ** attempt)

    def more(self, tries_done: int, elapsed_s: float, next_delay: float = 0.0) -> bool:
        """True while another try fits: under the attempt cap and inside the budget."""
        if self.attempts and tries_done >= self.attempts:
            return False
        return elapsed_s + next_delay <= self.budget_s


def policies(settings: Any, *, retries: int = 4, retry_delay: float = 0.5,
             max_retry_delay: float = 8.0) -> dict[str, RetryPolicy]:
    """The policies of one adapter (`retries` and the delays are the read policy's; tests shrink them)."""
    close_s = float(getattr(settings, "CLOSE_DEADLINE_SECONDS", 300.0))
    lookup_s = float(getattr(settings, "ORDER_LOOKUP_SECONDS", 10.0))
    return {
        "read": RetryPolicy("read", max(1, retries), 60.0, retry_delay, max_retry_delay),
        "entry": RetryPolicy("entry", max(1, retries) + 1, 30.0, retry_delay, max_retry_delay),
        "close": RetryPolicy("close", 0, close_s, retry_delay, min(max_retry_delay, 5.0)),
        "lookup": RetryPolicy("lookup", 0, lookup_s, min(retry_delay, 0.25), 1.0),
        "close_lookup": RetryPolicy("close_lookup", 0, max(lookup_s, close_s), min(retry_delay, 0.25), 2.0),
    }
