"""Candles on which the strategy already said it keeps its position: the step does not ask it again.

A backtest tells the step and the strategy its candles first (`CandleStep.known_candles`). A
strategy that `HoldsAhead` can then say, right after it decided to keep its position, on how
many of the next told candles it would keep it too, as long as the position stays as it is.
On those candles the step does everything else as it would (the candle into the history, the
exchange's stops and marks, the indicators, the account limits, the candles held), but makes
no context and asks no decision: the answer is known, and a kept position sends no order.

The stretch ends early, and the strategy is asked again, as soon as anything its answer
assumed does not hold: a fill on the pair (a stop-loss or take-profit hit, any order), a
candle that is not the told one (another open time, any other value), or the candles running
out. Trailing stops and online learning never coast (the step checks both before it starts
one): a trailed stop reads every candle's context, and a learner learns from every candle.
"""

from __future__ import annotations

import numpy as np

from bot.types import Candle

__all__ = ["Coast"]


class Coast:
    """A stretch of told candles a strategy keeps its position through: the told open times and
    values (the whole run's arrays, `CANDLE_COLUMNS` order, shared), the next one expected and
    the end of the stretch, and whether a position is held (its candles held count on)."""

    __slots__ = ("times", "values", "next", "stop", "held")

    def __init__(self, times: np.ndarray, values: np.ndarray, first: int, stop: int, *, held: bool) -> None:
        self.times, self.values, self.next, self.stop, self.held = times, values, first, stop, held

    def __len__(self) -> int:
        return self.stop - self.next

    def takes(self, candle: Candle) -> bool:
        """Whether `candle` is the next told candle of the stretch, value for value (a NaN never
        is: it compares unequal), and if so, count it as taken."""
        i = self.next
        if i >= self.stop or candle.open_ms != int(self.times[i]):
            return False
        o, h, lo, c, v, t = self.values[i].tolist()
        if candle.close != c or candle.high != h or candle.low != lo or candle.open != o or \
                candle.volume != v or candle.turnover != t:
            return False
        self.next = i + 1
        return True
