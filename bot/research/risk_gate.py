"""The risk manager inside the fast backtest loop: the engine's own `RiskManager`, fed the same
numbers the engine would give it, so the fast path sizes, stops and vetoes entries as the bot does.

The engine computes ATR, its 100-candle median and the regime over the last
`engine_state.INDICATOR_TAIL` candles at every candle; here they are computed once over the
whole frame with the same functions (`bot.analysis.indicators`, `bot.analysis.features.regime_codes`). The
recursive indicators (Wilder ATR, ADX) forget their seed within a few hundred candles, so the two
agree to far below a tick; a test checks that both paths give the same trades.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bot.errors import RiskViolationError
from bot.safety.risk import DAY_MS

__all__ = ["RiskGate"]

class _VetoCounter:
    """Where the fast path's vetoes go: counted (RiskManager.vetoes), not logged -- an optimiser
    runs millions of candles, and the engine path is there to see every veto in the log."""

    def emit(self, *args: Any, **kwargs: Any) -> None:
        return None


class RiskGate:
    """Per-candle account limits and per-entry verdicts of `RiskManager` for one symbol's frame."""

    def __init__(self, settings: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT") -> None:
        from bot.analysis import indicators as ind
        from bot.analysis.features import regime_codes, regime_label

        if getattr(settings, "TRAILING_STOP", False):
            raise ValueError("the fast backtest path does not model trailing stops (TRAILING_STOP=true); "
                             "use the engine path")
        self.symbol = symbol
        h, lo, c = (frame[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close"))
        atr = np.asarray(ind.atr(h, lo, c, settings.ATR_PERIOD), dtype=np.float64)
        self.atr = np.where(np.isfinite(atr), atr, 0.0).tolist()
        self.atr_median = (pd.Series(atr).rolling(100, min_periods=1).median().fillna(0.0).to_numpy().tolist())
        bb = ind.bollinger(c, settings.BB_PERIOD, settings.BB_STD)
        adx = ind.adx(h, lo, c, settings.ADX_PERIOD)[0]
        codes = regime_codes(None, settings=settings, indicators={"adx": adx, "bb_bandwidth": bb[3]})
        self.regime = [regime_label(x) for x in codes.tolist()]   # warming up reads as choppy, as in the engine
        self.settings = settings
        self.risk = self._make()

    def _make(self) -> Any:
        from bot.exchange.executor import TradeExecutor
        from bot.safety.risk import RiskManager
        return RiskManager(  # the executor's sizing rule, not a copy of it
            self.settings, sizer=TradeExecutor(None, None, settings=self.settings).notional_for,  # type: ignore[arg-type]
            bus=_VetoCounter())  # type: ignore[arg-type]

    # A gate travels to other processes (a spawned pool, Ray workers) as its indicators: the
    # RiskManager (it holds a lock) is left behind and made fresh there, as `fresh()` makes one.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "risk"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.risk = self._make()

    def fresh(self) -> "RiskGate":
        """The same precomputed indicators with a new RiskManager (no halts, no peak): one per run."""
        other = object.__new__(RiskGate)
        other.__dict__.update(self.__dict__)
        other.risk = self._make()
        return other

    @property
    def vetoes(self) -> int:
        return self.risk.vetoes

    def check(self, equity: float, close_ms: int) -> None:
        """The account limits at a candle's close (a breach halts entries, as in the engine).

        `check_limits` runs only when it could change something: a new UTC day, a new equity
        peak, or equity below the loss floors. Between those it would return without effect,
        and skipping it keeps the loop lean."""
        r, s = self.risk, self.settings
        if (close_ms // DAY_MS == r.day and equity <= r.peak_equity
                and equity >= r.day_start_equity * (1.0 - s.DAILY_LOSS_LIMIT)
                and equity >= r.peak_equity * (1.0 - s.MAX_DRAWDOWN)):
            return
        try:
            r.check_limits(equity, close_ms)
        except RiskViolationError:
            pass  # the halt is remembered by the risk manager: later entries are vetoed

    def entry(self, i: int, target: int, price: float, equity: float, stop_loss: float | None,
              take_profit: float | None, time_ms: int) -> tuple[float, float | None, float | None] | None:
        """(notional, stop-loss, take-profit) if the entry is approved, else None."""
        v = self.risk.evaluate_entry(symbol=self.symbol, side="long" if target > 0 else "short", price=price,
                                     atr=self.atr[i], equity=equity, positions=(), regime=self.regime[i],
                                     atr_median=self.atr_median[i], stop_loss=stop_loss,
                                     take_profit=take_profit, time_ms=time_ms)
        return (v.notional, v.stop_loss, v.take_profit) if v.approved else None
