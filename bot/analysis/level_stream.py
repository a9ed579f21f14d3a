"""Support and resistance over the last `lookback` candles, kept up to date one candle at a time.

`features.support_resistance(frame, lookback=L)` finds the pivots of the last L candles in a
pass over them every time it is called. `LevelStream` finds each pivot once, when the candle
`span` after it closes, keeps the pivots of the last L candles, and clusters them on request
(`levels`): the same pivots, the same stable price order and the same grouping rule, so the
same `Level`s as `support_resistance` over the same last L candles (tested on real candles).
"""

from __future__ import annotations

import bisect
from collections import deque

from bot.analysis import indicators as ind
from bot.analysis.features import Level
from bot.analysis.indicator_stream import numpy_sum

__all__ = ["LevelStream"]

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

    def levels(self, atr: float, last_close: float, *, min_touches: int = 1) -> list[Level]:
        """The clusters, sorted by price: pivots grouped while each stays within
        `tolerance_atr` x `atr` of its group's mean (as `features.support_resistance`; the means
        are numpy's sums, bit for bit). `atr` is the current ATR."""
        if not atr == atr or self.candles == 0:
            return []
        tol = self.tolerance_atr * float(atr)
        levels: list[Level] = []
        group: list[float] = []
        newest = -1
        total = mean = 0.0
        for p, _, i in self._sorted:
            if group and p - mean > tol:
                if len(group) >= min_touches:
                    levels.append(Level(mean, len(group), "support" if mean < last_close else "resistance", newest))
                group, newest, total = [], -1, 0.0
            group.append(p)
            newest = max(newest, i)
            n = len(group)
            total += p      # numpy adds fewer than 8 values one after the other
            mean = (total if n < 8 else numpy_sum(group)) / n
        if group and len(group) >= min_touches:
            levels.append(Level(mean, len(group), "support" if mean < last_close else "resistance", newest))
        return levels
