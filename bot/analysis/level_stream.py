"""Support and resistance over the last `lookback` candles, kept up to date one candle at a time.

`features.support_resistance(frame, lookback=L)` finds the pivots of the last L candles in a
pass over them every time it is called. `LevelStream` finds each pivot once, when the candle
`span` after it closes, keeps the pivots of the last L candles, and clusters them on request
(`levels`): the same pivots, the same stable price order and the same grouping rule, so the
same `Level`s as `support_resistance` over the same last L candles (tested on real candles).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import NamedTuple

from bot.analysis import indicators as ind
from bot.analysis.feature_stream import numpy_sum
from bot.analysis.features import Level

__all__ = ["Cluster", "LevelStream"]


class Cluster(NamedTuple):
    """A price level: the mean of a cluster of pivots and how many pivots it holds."""

    price: float
    touches: int

class LevelStream:
    """Pivot highs and lows of the last `lookback` candles and their price clusters.

    Feed closed candles with `update(high, low)`; `levels(atr, last_close)` gives what
    `support_resistance(last lookback candles, atr=atr, tolerance_atr=..., pivot_span=span)`
    gives, except that `Level.last_index` counts candles from the first one fed to the stream.
    Options (keyword-only): `span`, `lookback`, `tolerance_atr`.
    """

    def __init__(self, *, span: int = 5, lookback: int = 300, tolerance_atr: float = 0.5) -> None:
        self.span = ind._period(span, "pivot_span")
        self.lookback = ind._period(lookback, "lookback")
        self.tolerance_atr = float(tolerance_atr)
        self._h: deque[float] = deque(maxlen=2 * self.span + 1)
        self._lo: deque[float] = deque(maxlen=2 * self.span + 1)
        # pivots as (price, 0 high / 1 low, candle number): sorted, this is support_resistance's
        # stable price order of [highs by time, lows by time]
        self._sorted: list[tuple[float, int, int]] = []
        self._by_time: deque[tuple[float, int, int]] = deque()   # the same, oldest first
        self.candles = 0

    def update(self, high: float, low: float) -> None:
        """Move on by one closed candle: the candle `span` back may now be a confirmed pivot."""
        h, lo, span = self._h, self._lo, self.span
        h.append(float(high))
        lo.append(float(low))
        self.candles += 1
        if len(h) == h.maxlen:
            i = self.candles - 1 - span
            if h[span] == max(h):
                self._add((h[span], 0, i))
            if lo[span] == min(lo):
                self._add((lo[span], 1, i))
        first = self.candles - self.lookback + span   # pivots before this lost their left side
        old = self._by_time
        while old and old[0][2] < first:
            piv = old.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, piv)]

    def _add(self, piv: tuple[float, int, int]) -> None:
        self._by_time.append(piv)
        bisect.insort(self._sorted, piv)

    def clusters(self, atr: float, *, near: float = 0.0, within: float = math.inf) -> list[Cluster]:
        """The clusters as (price, touches), sorted by price: pivots grouped while each stays
        within `tolerance_atr` x `atr` of its group's mean (as `features.support_resistance`; the
        means are numpy's, bit for bit). `atr` is the current ATR. With `near` and `within`: only
        the clusters at most `within` from the price `near` (the grouping still sees them all)."""
        return [Cluster(p, n) for p, n, _ in self._groups(atr, near, within) if abs(p - near) <= within]

    def levels(self, atr: float, last_close: float, *, min_touches: int = 1) -> list[Level]:
        """The clusters as `Level`s (support below `last_close`, resistance above), as
        `features.support_resistance` gives them."""
        return [Level(p, n, "support" if p < last_close else "resistance", i)
                for p, n, i in self._groups(atr) if n >= min_touches]

    def _groups(self, atr: float, near: float = 0.0, within: float = math.inf) -> list[tuple[float, int, int]]:
        """The groups in price order; with a band `near` +- `within`, only those that can have
        their mean in it, and any others the pivots grouped with them."""
        if not atr == atr:
            return []
        tol = self.tolerance_atr * float(atr)
        pivots = self._sorted
        first, end = 0, len(pivots)
        if within < math.inf:
            # A gap wider than `tol` between neighbours always starts a group: the group so far has
            # its mean at or below the lower one. Groups wholly beyond such a gap outside the band
            # cannot have their mean in it: skipped. (Band and gap widened by far more than the
            # rounding of a mean.)
            margin = 1e-9 * (abs(near) + within)
            first = bisect.bisect_left(pivots, (near - within - margin,))
            while 0 < first < len(pivots) and pivots[first][0] - pivots[first - 1][0] <= tol + margin:
                first -= 1
            end = bisect.bisect_right(pivots, (near + within + margin, 2))
            while 0 < end < len(pivots) and pivots[end][0] - pivots[end - 1][0] <= tol + margin:
                end += 1
        out: list[tuple[float, int, int]] = []
        start, n, newest = first, 0, 0      # the group is pivots[start:start + n]
        total = mean = 0.0
        for j in range(first, end):
            p, _, i = pivots[j]
            if n and p - mean > tol:
                out.append((mean, n, newest))
                start, n, newest, total = j, 0, 0, 0.0
            n += 1
            if i > newest:
                newest = i
            if n < 8:
                total += p      # numpy adds fewer than 8 values one after the other
                mean = total / n
            else:
                mean = numpy_sum([q for q, _, _ in pivots[start:j + 1]]) / n
        if n:
            out.append((mean, n, newest))
        return out
