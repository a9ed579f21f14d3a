"""The baseline: a simple moving-average crossover, long and short, with an optional ATR stop.

It is the reference the backtester is benchmarked with (against backtesting.py) and the
strategy the optimiser tunes in its examples. Rules, stated once so both entry points agree:

- `fast` and `slow` are simple moving averages of the close (pandas rolling mean).
- A cross up (`fast[i-1] < slow[i-1]` and `fast[i] > slow[i]`) targets long; a cross down
  targets short (flat when shorts are not allowed). Between crosses the strategy keeps whatever
  position it has: after a stop-loss it stays flat until the next cross instead of re-entering.
- With `atr_stop`, each entry suggests a stop `atr_stop` ATRs from the price, where ATR is the
  simple mean of the true range over `atr_period` candles (`indicators.atr(...,
  smoothing="mean")`: a fixed window, so the value at a candle does not depend on how much
  history the caller passes in, as Wilder's would).

`decide(context)` is the per-candle entry point the engine calls. `signals(frame)` computes the
same decisions for every candle at once: an (n, 3) array whose row i holds the target for each
position state the strategy might be in when candle i closes (columns: flat, long, short; see
`state_column`). The backtester's fast path runs on it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis import indicators as ind
from bot.analysis.feature_stream import numpy_sum, numpy_window_sums
from bot.strategies.base import FLAT, LONG, SHORT, Decision, StrategyContext
from bot.types import CANDLE_COLUMNS, interval_ms

__all__ = ["SMACrossStrategy", "sma", "state_column"]

_CLOSE = CANDLE_COLUMNS.index("close")


def state_column(position: int) -> int:
    """Column of a signals array for a position state: flat 0, long 1, short 2."""
    return position % 3


def cross_flags(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean arrays over two mean series: where fast crosses above slow (`fast[i-1] < slow[i-1]`
    and `fast[i] > slow[i]`), and where it crosses below; a NaN compares False (no cross)."""
    up = np.zeros(len(fast), dtype=bool)
    down = np.zeros(len(fast), dtype=bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
        down[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
    return up, down


def sma(values: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average; NaN until `period` values exist (same arithmetic as backtesting.py)."""
    return pd.Series(np.asarray(values, dtype=np.float64)).rolling(period).mean().to_numpy()


class SMACrossStrategy:
    """SMA(fast)/SMA(slow) crossover, long and short, optional ATR stop-loss and take-profit.

    Options (keyword-only): `fast`, `slow` (candles), `atr_stop` (stop distance in ATRs, None =
    no stop from the strategy), `take_profit` (take-profit distance in ATRs, None = none),
    `atr_period` (default ATR_PERIOD), `allow_short` (default: the market allows it).
    """

    name = "sma"

    def __init__(self, settings: Any, *, fast: int = 10, slow: int = 30, atr_stop: float | None = None,
                 take_profit: float | None = None, atr_period: int | None = None,
                 allow_short: bool | None = None) -> None:
        fast, slow = int(fast), int(slow)
        if fast < 1 or slow < 2:
            raise ValueError(f"SMA periods must be positive (fast >= 1, slow >= 2), got fast={fast}, slow={slow}")
        if fast >= slow:
            raise ValueError(f"SMA fast period must be shorter than slow, got fast={fast}, slow={slow}")
        if atr_stop is not None and atr_stop <= 0:
            raise ValueError(f"atr_stop must be positive or None, got {atr_stop}")
        if take_profit is not None and take_profit <= 0:
            raise ValueError(f"take_profit must be positive or None, got {take_profit}")
        self.settings = settings
        self.fast, self.slow = fast, slow
        self.atr_stop = None if atr_stop is None else float(atr_stop)
        self.take_profit = None if take_profit is None else float(take_profit)
        self.atr_period = int(atr_period or getattr(settings, "ATR_PERIOD", 14))
        if allow_short is None:
            allow_short = bool(getattr(settings, "allows_short", True))
        self.allow_short = allow_short
        # per symbol, the candles a backtest said it will feed (known_candles): index by open time,
        # closes, whether each crosses up and down, and which ones cross (in order)
        self._known: dict[str, tuple[dict[int, int], list[float], list[bool], list[bool], np.ndarray]] = {}
        # per symbol: the last windows' closes and their fast and slow means (see _last_cross)
        self._last: dict[str | None, tuple[list[float], float, float]] = {}
        # the decisions between crosses, made once (a Decision is frozen: one object serves every candle)
        keep = {t: Decision(t, confidence=50.0, reason="no crossover: keep the position", source=self.name)
                for t in (FLAT, LONG, SHORT)}
        self._keep: dict[int | None, Decision] = {
            **keep, None: Decision(FLAT, reason="shorts are not allowed here: close it", source=self.name)}

    def __repr__(self) -> str:
        return (f"SMACrossStrategy(fast={self.fast}, slow={self.slow}, atr_stop={self.atr_stop}, "
                f"take_profit={self.take_profit}, allow_short={self.allow_short})")

    @property
    def warmup(self) -> int:
        """Candles needed before the first decision can be a cross."""
        return max(self.slow, self.atr_period + 1 if self.atr_stop or self.take_profit else 0) + 1

    # -- vectorised: every candle at once --------------------------------------------------------
    def crosses(self, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boolean arrays: where fast crosses above slow, and where it crosses below."""
        return cross_flags(sma(close, self.fast), sma(close, self.slow))   # NaN in the warm-up: no cross

    def signals(self, frame: pd.DataFrame) -> np.ndarray:
        """Targets for every candle and every position state: int8 array of shape (n, 3)."""
        up, down = self.crosses(frame["close"].to_numpy(dtype=np.float64))
        out = np.empty((len(up), 3), dtype=np.int8)
        out[:] = (FLAT, LONG, SHORT if self.allow_short else FLAT)   # no cross: keep what we have
        out[up] = LONG
        out[down] = SHORT if self.allow_short else FLAT
        return out

    def stop_distances(self, frame: pd.DataFrame | dict[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-candle stop-loss and take-profit distances in price (None when not used), from a
        frame or from its high, low and close arrays."""
        if self.atr_stop is None and self.take_profit is None:
            return None, None
        atr = ind.atr(np.asarray(frame["high"]), np.asarray(frame["low"]), np.asarray(frame["close"]),
                      self.atr_period, smoothing="mean")
        return (None if self.atr_stop is None else atr * self.atr_stop,
                None if self.take_profit is None else atr * self.take_profit)

    # -- per candle: what the engine calls -------------------------------------------------------
    def _last_cross(self, close: list[float], symbol: str | None = None) -> tuple[bool, bool]:
        """Did the last candle cross up / down? Means of the last windows as numpy takes them
        (`numpy_sum`: its pairwise sum, bit for bit, in plain Python; a numpy call per window
        would cost more than the rest of the decision). The means before the candle are the
        ones the last call for `symbol` computed when its closes are these shifted by one (the
        same values, so the same sums): only the two new windows are summed then."""
        f, s = self.fast, self.slow
        if len(close) < s + 1:
            return False, False
        c = close[-s - 1:]      # the last slow + 1 closes
        k = len(c)
        f1, s1 = numpy_sum(c, k - f, f) / f, numpy_sum(c, 1, s) / s
        last = self._last.get(symbol) if symbol is not None else None
        if last is not None and last[0][1:] == c[:-1]:
            f0, s0 = last[1], last[2]
        else:
            f0, s0 = numpy_sum(c, k - f - 1, f) / f, numpy_sum(c, 0, s) / s
        if symbol is not None:
            self._last[symbol] = (c, f1, s1)
        return bool(f0 < s0 and f1 > s1), bool(f0 > s0 and f1 < s1)

    def _closes(self, context: StrategyContext) -> list[float]:
        """The closes a cross needs (the last slow + 1): from the engine's arrays when it offers
        them (`bot.engine.candle_frames.CandleFrames.tail`: no frame is built for a candle
        without a cross), else from the frame."""
        tail = getattr(context.candles, "tail", None)
        arrays = tail(context.interval) if tail is not None else None
        if arrays is not None:
            return arrays[1][-(self.slow + 1):, _CLOSE].tolist()
        return context.candles[context.interval]["close"].to_numpy(dtype=np.float64)[-(self.slow + 1):].tolist()

    def _ranges(self, context: StrategyContext) -> dict[str, np.ndarray]:
        """High, low and close of the last atr_period + 2 candles (an entry's ATR): from the
        engine's arrays when it offers them (no frame built), else from the frame."""
        n = self.atr_period + 2
        tail = getattr(context.candles, "tail", None)
        arrays = tail(context.interval) if tail is not None else None
        if arrays is not None:
            v = arrays[1][-n:]
            return {name: v[:, CANDLE_COLUMNS.index(name)] for name in ("high", "low", "close")}
        frame = context.candles[context.interval].iloc[-n:]
        return {name: frame[name].to_numpy(dtype=np.float64) for name in ("high", "low", "close")}

    def known_candles(self, symbol: str, times: np.ndarray, values: np.ndarray) -> None:
        """The candles a backtest will feed for `symbol`, in order (`KnowsCandles`): the fast and
        slow means of every window of their closes in one pass (`numpy_window_sums`: numpy's sum of
        each window, the same bits `numpy_sum` gives per candle) and the crosses between them, read
        back by `decide` instead of summed (and by `holds_ahead`: the next cross)."""
        close = np.ascontiguousarray(np.asarray(values)[:, _CLOSE], dtype=np.float64)
        if len(close) <= self.slow:      # none (the run is over) or too few for a cross: nothing known
            self._known.pop(symbol, None)
            return
        fast = np.full(len(close), math.nan)
        slow = np.full(len(close), math.nan)
        fast[self.fast - 1:] = numpy_window_sums(close, self.fast) / self.fast
        slow[self.slow - 1:] = numpy_window_sums(close, self.slow) / self.slow
        up, down = cross_flags(fast, slow)   # the comparisons `_last_cross` makes on the same means
        opens = np.asarray(times, dtype=np.int64).tolist()
        self._known[symbol] = ({ms: i for i, ms in enumerate(opens)}, close.tolist(), up.tolist(), down.tolist(),
                               np.flatnonzero(up | down))

    def holds_ahead(self, context: StrategyContext, decision: Decision) -> int:
        """`HoldsAhead`: after a decision to keep the position on a known candle, the known
        candles before the next cross (between crosses `decide` keeps whatever is held: the
        position itself does not matter), or 0 when this candle was not read from the known
        candles."""
        if decision.target != context.position_target or self._known_cross(context) is None:
            return 0
        index, *_, crosses = self._known[context.symbol]
        j = index[context.time_ms - interval_ms(context.interval)]
        k = int(crosses.searchsorted(j, side="right"))
        nxt = int(crosses[k]) if k < len(crosses) else len(index)
        return nxt - j - 1

    def _known_cross(self, context: StrategyContext) -> tuple[bool, bool] | None:
        """The cross at this candle from the known candles' means, when it is one of them (its
        open time is, its close agrees) with a whole slow window of known candles before it; else
        None. The known candles were fed in order (the contract of `known_candles`), so that
        window is the one the candle-by-candle sums would read."""
        known = self._known.get(context.symbol)
        if known is None:
            return None
        index, closes, up, down, _ = known
        j = index.get(context.time_ms - interval_ms(context.interval))
        if j is None or j < self.slow or closes[j] != context.price:
            return None
        return up[j], down[j]

    def decide(self, context: StrategyContext) -> Decision:
        """The target after the candle at `context.time_ms` closed."""
        cross = self._known_cross(context) if self._known else None
        up, down = cross if cross is not None else self._last_cross(self._closes(context), context.symbol)
        current = context.position_target
        allow_short = self.allow_short and context.allow_short
        if up:
            target, why = LONG, f"SMA{self.fast} crossed above SMA{self.slow}"
        elif down:
            target = SHORT if allow_short else FLAT
            why = f"SMA{self.fast} crossed below SMA{self.slow}"
        else:
            if current == SHORT and not allow_short:
                return self._keep[None]
            return self._keep[current]
        stop = take = None
        if target != FLAT and target != current and (self.atr_stop is not None or self.take_profit is not None):
            sl_dist, tp_dist = self.stop_distances(self._ranges(context))   # an entry: the ATR needs the ranges
            price = context.price
            if sl_dist is not None and np.isfinite(sl_dist[-1]):
                stop = price - target * float(sl_dist[-1])
            if tp_dist is not None and np.isfinite(tp_dist[-1]):
                take = price + target * float(tp_dist[-1])
        return Decision(target, confidence=60.0, setup="breakout" if target != FLAT else "none",
                        stop_loss=stop, take_profit=take, reason=why, source=self.name)
