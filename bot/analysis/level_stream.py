"""Support and resistance over the last `lookback` candles, kept up to date one candle at a time.

`features.support_resistance(frame, lookback=L)` finds the pivots of the last L candles in a
pass over them every time it is called. `LevelStream` finds each pivot once, when the candle
`span` after it closes, keeps the pivots of the last L candles, and clusters them on request
(`levels`): the same pivots, the same stable price order and the same grouping rule, so the
same `Level`s as `support_resistance` over the same last L candles (tested on real candles).
"""

from __future__ import annotations

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
        self._highs: deque[tuple[int, float]] = deque()   # (candle number, price), oldest first
        self._lows: deque[tuple[int, float]] = deque()
        self.candles = 0

    def update(self, high: float, low: float) -> None:
        """Move on by one closed candle: the candle `span` back may now be a confirmed pivot."""
        h, lo = self._h, self._lo
        h.append(float(high))
        lo.append(float(low))
        self.candles += 1
        if len(h) == h.maxlen:
            i = self.candles - 1 - self.span
            if h[self.span] == max(h):
                self._highs.append((i, h[self.span]))
            if lo[self.span] == min(lo):
                self._lows.append((i, lo[self.span]))
        first = self.candles - self.lookback + self.span   # pivots before this lost their left side
        for piv in (self._highs, self._lows):
            while piv and piv[0][0] < first:
                piv.popleft()

    def levels(self, atr: float, last_close: float, *, min_touches: int = 1) -> list[Level]:
        """The clusters, sorted by price: pivots grouped while each stays within
        `tolerance_atr` x `atr` of its group's mean (as `features.support_resistance`)."""
        if not atr == atr or self.candles == 0:
            return []
        tol = self.tolerance_atr * float(atr)
        pivots = sorted([*self._highs, *self._lows], key=lambda p: p[1])   # stable: highs first
        levels: list[Level] = []
        group_p: list[float] = []
        group_i: list[int] = []

        def close_group() -> None:
            if len(group_p) >= min_touches:
                p = numpy_sum(group_p) / len(group_p)
                levels.append(Level(p, len(group_p), "support" if p < last_close else "resistance",
                                    max(group_i)))

        mean = 0.0
        for i, p in pivots:
            if group_p and p - mean > tol:
                close_group()
                group_p, group_i = [], []
            group_p.append(p)
            group_i.append(i)
            mean = numpy_sum(group_p) / len(group_p)
        if group_p:
            close_group()
        return levels
