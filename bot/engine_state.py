"""The engine's per-pair memory: a bounded tail of candles with its indicators, the trade book
that turns fills into round trips, and the frozen chart data the UI draws.

Kept apart from `engine.py` so the loop reads top to bottom there and the bookkeeping here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bot.data_manager import CANDLE_COLUMNS, Candle
from bot.exchange.base import ClosedTrade, Fill

__all__ = ["ChartData", "TradeMarker", "PairState", "TradeBook", "compute_indicators", "regime_of", "TAIL"]

# Candles kept per pair: the DQN state's slow features (EMA 200) are computed over up to 2,000
# candles (bot/strategies/dqn.py); the engine's own indicators need far fewer and are computed over
# the last INDICATOR_TAIL only (EMA 50, ATR, ADX and a 100-candle regime window, converged), so a
# candle costs a pass over hundreds of values, never over years of history.
TAIL = 2000
INDICATOR_TAIL = 400


@dataclass(frozen=True)
class TradeMarker:
    time_ms: int
    price: float
    side: str           # Buy | Sell
    reason: str = ""


@dataclass(frozen=True)
class ChartData:
    """What the price chart draws for one pair: a copy, safe to use on the UI thread."""

    symbol: str
    interval: str
    candles: pd.DataFrame                  # canonical frame, newest last
    ema21: np.ndarray
    ema50: np.ndarray
    bb_upper: np.ndarray
    bb_lower: np.ndarray
    markers: tuple[TradeMarker, ...] = ()
    stop_loss: float | None = None
    take_profit: float | None = None
    source: str = "REPLAY"


def _ema(x: np.ndarray, period: int) -> np.ndarray:
    from bot import indicators as ind
    return np.asarray(ind.ema(x, period), dtype=np.float64)


def compute_indicators(frame_arrays: dict[str, np.ndarray], settings: Any) -> dict[str, np.ndarray]:
    """Indicators over the bounded tail, through `bot.indicators` (the exact TA-Lib twins)."""
    from bot import indicators as ind

    h, lo, c = (frame_arrays[k][-INDICATOR_TAIL:] for k in ("high", "low", "close"))
    out: dict[str, np.ndarray] = {"atr": np.asarray(ind.atr(h, lo, c, settings.ATR_PERIOD), dtype=np.float64)}
    out["ema21"] = _ema(c, 21)
    out["ema50"] = _ema(c, 50)
    bb = ind.bollinger(c, settings.BB_PERIOD, settings.BB_STD)
    out["bb_upper"], out["bb_lower"], out["bb_bandwidth"] = bb[0], bb[2], bb[3]
    out["adx"] = ind.adx(h, lo, c, settings.ADX_PERIOD)[0]
    return out


def regime_of(indicators: dict[str, np.ndarray], settings: Any) -> str:
    """The regime of the last candle (bot.features: ADX -> trending, Bollinger bandwidth above its
    rolling percentile -> volatile, else choppy; 'choppy' while the indicators warm up)."""
    from bot.features import regime_codes

    if "adx" not in indicators or not len(indicators["adx"]):
        return "choppy"
    code = int(regime_codes(None, settings=settings, indicators=indicators)[-1])
    return {0: "trending", 1: "choppy", 2: "volatile"}.get(code, "choppy")


class PairState:
    """One traded pair: the bounded candle tail (numpy, appended in O(tail)), its latest
    indicators, and the markers of the trades made on it."""

    def __init__(self, symbol: str, interval: str, history: pd.DataFrame, *, tail: int = TAIL) -> None:
        self.symbol = symbol
        self.interval = interval
        self.tail = tail
        h = history.iloc[-tail:]
        self.t = np.asarray(h.index, dtype=np.int64)
        self.v = h[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64).copy()
        self.indicators: dict[str, np.ndarray] = {}
        self.regime = "choppy"
        self.markers: deque[TradeMarker] = deque(maxlen=200)
        self.last_decision: Any = None
        self.held_candles = 0
        self.learn_prev: tuple | None = None     # (state, position taken, equity, pair value) for the learner

    def __len__(self) -> int:
        return len(self.t)

    @property
    def last_ms(self) -> int:
        return int(self.t[-1]) if len(self.t) else -1

    @property
    def price(self) -> float:
        return float(self.v[-1, 3]) if len(self.v) else 0.0

    def append(self, c: Candle) -> bool:
        """Add a closed candle; False (and nothing changes) if it is not newer than the last."""
        if c.open_ms <= self.last_ms:
            return False
        row = np.array([[c.open, c.high, c.low, c.close, c.volume, c.turnover]], dtype=np.float64)
        if len(self.t) >= self.tail:
            self.t = np.concatenate((self.t[1:], [c.open_ms]))
            self.v = np.concatenate((self.v[1:], row))
        else:
            self.t = np.concatenate((self.t, [c.open_ms]))
            self.v = np.concatenate((self.v, row))
        return True

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: self.v[:, i] for i, name in enumerate(CANDLE_COLUMNS)}

    def frame(self, n: int | None = None) -> pd.DataFrame:
        """A canonical frame copy of the last `n` candles (all kept ones by default)."""
        sl = slice(-n, None) if n else slice(None)
        # One float64 block, already sorted and unique: the canonical frame without make_frame's sort.
        return pd.DataFrame(self.v[sl].copy(), index=pd.Index(self.t[sl].copy(), name="open_time"),
                            columns=list(CANDLE_COLUMNS))

    def atr(self) -> float:
        a = self.indicators.get("atr")
        return float(a[-1]) if a is not None and len(a) and np.isfinite(a[-1]) else 0.0

    def chart_copy(self, n: int, position: Any, source: str) -> ChartData:
        ind = self.indicators
        k = min(n, len(self.t))

        def tail(name: str) -> np.ndarray:
            arr = ind.get(name)
            if arr is None:
                return np.full(k, np.nan)
            arr = arr[-k:]
            return np.concatenate((np.full(k - len(arr), np.nan), arr))  # pad where no indicator was computed

        first = int(self.t[-k]) if k else 0
        return ChartData(self.symbol, self.interval, self.frame(k), tail("ema21"), tail("ema50"), tail("bb_upper"),
                         tail("bb_lower"), tuple(m for m in self.markers if m.time_ms >= first),
                         getattr(position, "stop_loss", None), getattr(position, "take_profit", None), source)

    def atr_median(self, window: int = 100) -> float:
        a = self.indicators.get("atr")
        if a is None:
            return 0.0
        a = a[-window:]
        a = a[np.isfinite(a)]
        return float(np.median(a)) if len(a) else 0.0


@dataclass
class _OpenTrade:
    side: str
    qty: float
    entry_price: float
    entry_ms: int
    fees: float = 0.0
    realised: float = 0.0
    entry_notional: float = 0.0
    closed_qty: float = 0.0


@dataclass
class TradeBook:
    """Turns fills into round trips (`ClosedTrade`), whoever caused them: a signal, a stop
    triggered by the exchange, a manual order or close-all. P&L is net of every fee."""

    mode: str = "PAPER"
    open: dict[str, _OpenTrade] = field(default_factory=dict)
    closed_pnl: dict[str, float] = field(default_factory=dict)

    def value(self, symbol: str, mark: float) -> float:
        """Net P&L made on `symbol` so far: closed round trips + the open one marked at `mark`."""
        v = self.closed_pnl.get(symbol, 0.0)
        ot = self.open.get(symbol)
        if ot is not None:
            d = 1 if ot.side == "long" else -1
            v += ot.realised - ot.fees + d * (mark - ot.entry_price) * ot.qty
        return v

    def apply(self, fill: Fill) -> ClosedTrade | None:
        """Book one fill; returns the round trip it completed, if any."""
        sign = 1 if fill.side == "Buy" else -1
        ot = self.open.get(fill.symbol)
        if ot is None:
            self.open[fill.symbol] = _OpenTrade("long" if sign > 0 else "short", fill.qty, fill.price, fill.time_ms,
                                                fees=fill.fee, entry_notional=fill.qty * fill.price)
            return None
        same = (ot.side == "long") == (sign > 0)
        if same:  # add to the position: new average entry
            ot.entry_notional += fill.qty * fill.price
            ot.qty += fill.qty
            ot.entry_price = ot.entry_notional / ot.qty
            ot.fees += fill.fee
            return None
        closed_qty = min(fill.qty, ot.qty)
        direction = 1 if ot.side == "long" else -1
        pnl = fill.realised_pnl if fill.realised_pnl else direction * (fill.price - ot.entry_price) * closed_qty
        ot.realised += pnl
        ot.fees += fill.fee * (closed_qty / fill.qty)
        ot.qty -= closed_qty
        ot.closed_qty += closed_qty
        ot.entry_notional = ot.qty * ot.entry_price
        if ot.qty > 1e-12:
            return None
        del self.open[fill.symbol]
        trade = ClosedTrade(symbol=fill.symbol, side=ot.side, qty=ot.closed_qty,
                            entry_price=ot.entry_price, exit_price=fill.price, entry_ms=ot.entry_ms,
                            exit_ms=fill.time_ms, pnl=ot.realised - ot.fees, fees=ot.fees, reason=fill.reason,
                            mode=self.mode)
        self.closed_pnl[fill.symbol] = self.closed_pnl.get(fill.symbol, 0.0) + trade.pnl
        rest = fill.qty - closed_qty
        if rest > 1e-12:  # a reversal: the remainder opens the other side
            self.open[fill.symbol] = _OpenTrade("long" if sign > 0 else "short", rest, fill.price, fill.time_ms,
                                                fees=fill.fee * rest / fill.qty, entry_notional=rest * fill.price)
        return trade

