"""The engine over history at full speed: two paths to the same trades, and their results.

- **Engine path** (`engine_backtest`): the very `TradingEngine` that paper and live trading run
  (strategy -> risk manager -> executor -> `SimExchange`), fed recorded candles one by one
  through its synchronous `process_candle` step, with no order delay. One code path with paper
  and live: a bug fixed in one is fixed in all. Any strategy works here.
- **Fast path** (`fast_backtest`): for strategies that can say what they would do on every
  candle at once (`strategy.signals(frame)`, an (n, 3) array of targets per position state), a
  lean sequential loop applies the *same* fill, fee, slippage, sizing and stop rules as
  `SimExchange` and `TradeExecutor`. It exists for the optimiser and the benchmark; a test
  checks that it produces the same trades as the engine path on real candles.

The fill rules both paths follow (those of `SimExchange`, with SIMULATION_ORDER_DELAY = 0):
a decision taken when candle i closes fills at candle i's close, moved against us by
SLIPPAGE_BPS; each fill pays FEE_RATE x its notional. Stops are watched from the next candle
on: a long's stop-loss fills when the low touches it (at the open if the candle gaps through
it), a take-profit when the high touches it; a stop and a take-profit in one candle count as the
stop (the pessimistic reading of a candle we cannot see inside). Stop fills slip like any
market order. Open positions are closed at the last close ("end-of-data") so every P&L is final.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bot.data_manager import interval_ms
from bot.exchange.base import ClosedTrade

__all__ = ["CostModel", "BacktestResult", "fast_backtest", "engine_backtest", "run_backtest",
           "buy_and_hold", "strategy_has_fast_path"]


@dataclass(frozen=True)
class CostModel:
    """Money rules of a backtest: start balance, fees, slippage, sizing (all from Settings)."""

    start_balance: float = 1000.0
    fee_rate: float = 0.00055          # fraction of notional per fill
    slippage_bps: float = 2.0          # basis points of price, against us on every market fill
    size_pct: float = 0.05             # entry notional as a fraction of equity
    min_notional: float = 10.0         # entries are at least this much, USDT
    qty_step: float = 0.0              # quantity step of the instrument (0 = any quantity)
    leverage: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any, *, qty_step: float = 0.0) -> "CostModel":
        return cls(start_balance=settings.PAPER_START_BALANCE, fee_rate=settings.FEE_RATE,
                   slippage_bps=settings.SLIPPAGE_BPS, size_pct=settings.POSITION_SIZE_PCT,
                   min_notional=settings.MIN_ORDER_USDT, qty_step=qty_step, leverage=settings.LEVERAGE)

    def notional_for(self, equity: float) -> float:
        """Entry notional: POSITION_SIZE_PCT of equity, at least MIN_ORDER_USDT."""
        return max(equity * self.size_pct, self.min_notional)


@dataclass(frozen=True)
class BacktestResult:
    """Everything one backtest produced. Arrays have one entry per candle (at its close)."""

    symbol: str
    interval: str
    strategy: str
    open_ms: np.ndarray             # candle open times, ms
    close: np.ndarray               # candle closes
    equity: np.ndarray              # account equity at each close, USDT
    position: np.ndarray            # position held after each close: +1 / 0 / -1
    trades: tuple[ClosedTrade, ...]
    fees: float                     # all fees paid, USDT
    start_balance: float
    path: str                       # "fast" | "engine"
    elapsed_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def candles(self) -> int:
        return len(self.close)

    @property
    def candles_per_second(self) -> float:
        return self.candles / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def trade_frame(self) -> pd.DataFrame:
        """The trade list as a table (one row per round trip)."""
        rows = [{
            "symbol": t.symbol, "side": t.side, "qty": t.qty,
            "entry_time": pd.Timestamp(t.entry_ms, unit="ms", tz="UTC"), "entry_price": t.entry_price,
            "exit_time": pd.Timestamp(t.exit_ms, unit="ms", tz="UTC"), "exit_price": t.exit_price,
            "pnl": t.pnl, "fees": t.fees, "return_pct": t.return_pct, "reason": t.reason,
        } for t in self.trades]
        cols = ["symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price", "pnl",
                "fees", "return_pct", "reason"]
        return pd.DataFrame(rows, columns=cols)


def buy_and_hold(close: np.ndarray, costs: CostModel) -> np.ndarray:
    """Equity of putting the whole start balance into the asset at the first close (one entry
    fee and slippage; the exit fee is charged on the last point so the end value is final)."""
    c = np.asarray(close, dtype=np.float64)
    slip = costs.slippage_bps / 1e4
    entry = c[0] * (1 + slip)
    qty = costs.start_balance / (entry * (1 + costs.fee_rate))
    cash = costs.start_balance - qty * entry * (1 + costs.fee_rate)
    eq = cash + qty * c
    eq[-1] = cash + qty * c[-1] * (1 - slip) * (1 - costs.fee_rate)
    return eq


def strategy_has_fast_path(strategy: Any) -> bool:
    return callable(getattr(strategy, "signals", None))


def _floor(qty: float, step: float) -> float:
    if step <= 0:
        return qty
    return math.floor(qty / step + 1e-9) * step


def fast_backtest(frame: pd.DataFrame, targets: np.ndarray, costs: CostModel, *,
                  stop_dist: np.ndarray | None = None, tp_dist: np.ndarray | None = None,
                  symbol: str = "BTCUSDT", interval: str = "60", strategy: str = "",
                  params: dict[str, Any] | None = None, start: int = 0) -> BacktestResult:
    """The lean sequential loop over precomputed targets (see the module docstring for the rules).

    `targets`: (n, 3) int array, row i = target when candle i closes for each position state
    (column 0 flat, 1 long, 2 short), or (n,) when the target does not depend on the position.
    `stop_dist` / `tp_dist`: per-candle distances in price from the decision close (NaN = none).
    `start`: candles before this index only warm indicators up (no trading, not in the result).
    """
    t0 = time.perf_counter()
    o = frame["open"].to_numpy(dtype=np.float64)
    h = frame["high"].to_numpy(dtype=np.float64)
    lo = frame["low"].to_numpy(dtype=np.float64)
    c = frame["close"].to_numpy(dtype=np.float64)
    t_open = np.asarray(frame.index, dtype=np.int64)
    step_ms = interval_ms(interval)
    tg = np.asarray(targets)
    if tg.ndim == 1:
        tg = np.repeat(tg[:, None], 3, axis=1)
    if tg.shape != (len(c), 3):
        raise ValueError(f"targets must have shape ({len(c)}, 3) or ({len(c)},), got {tg.shape}")
    tgl = tg.tolist()  # Python ints: indexing a list is much cheaper than a numpy array in a loop
    sl_l = stop_dist.tolist() if stop_dist is not None else None
    tp_l = tp_dist.tolist() if tp_dist is not None else None
    ol, hl, ll, cl = o.tolist(), h.tolist(), lo.tolist(), c.tolist()
    slip = costs.slippage_bps / 1e4
    fee_rate = costs.fee_rate
    qty_step = costs.qty_step

    n = len(c)
    equity = np.empty(n - start)
    held = np.zeros(n - start, dtype=np.int8)
    trades: list[ClosedTrade] = []
    cash = costs.start_balance      # wallet balance: realised P&L and fees included
    pos = 0
    qty = entry = 0.0
    sl = tp = math.nan
    entry_ms = 0
    entry_fee = 0.0
    fees = 0.0

    def close_out(i: int, price: float, reason: str, at_ms: int) -> None:
        nonlocal cash, pos, qty, entry, fees
        fill = price * (1 - slip) if pos > 0 else price * (1 + slip)
        fee = qty * fill * fee_rate
        gross = pos * (fill - entry) * qty
        cash += gross - fee
        fees += fee
        trades.append(ClosedTrade(symbol, "long" if pos > 0 else "short", qty, entry, fill, entry_ms, at_ms,
                                  gross - fee - entry_fee, fee + entry_fee, reason, "BACKTEST"))
        pos, qty, entry = 0, 0.0, 0.0

    for i in range(start, n):
        if pos != 0:
            # stops act on candles after the entry candle
            if pos > 0:
                if sl == sl and ll[i] <= sl:
                    close_out(i, min(ol[i], sl), "stop-loss", t_open[i] + step_ms)
                elif tp == tp and hl[i] >= tp:
                    close_out(i, max(ol[i], tp), "take-profit", t_open[i] + step_ms)
            else:
                if sl == sl and hl[i] >= sl:
                    close_out(i, max(ol[i], sl), "stop-loss", t_open[i] + step_ms)
                elif tp == tp and ll[i] <= tp:
                    close_out(i, min(ol[i], tp), "take-profit", t_open[i] + step_ms)
        want = tgl[i][pos % 3]
        if want != pos:
            px = cl[i]
            at = int(t_open[i]) + step_ms
            if pos != 0:
                close_out(i, px, "signal", at)
            if want != 0:
                eq_now = cash
                fill = px * (1 + slip) if want > 0 else px * (1 - slip)
                q = _floor(costs.notional_for(eq_now) / fill, qty_step)
                if q > 0:
                    pos, qty, entry, entry_ms = want, q, fill, at
                    entry_fee = q * fill * fee_rate
                    cash -= entry_fee
                    fees += entry_fee
                    d = sl_l[i] if sl_l is not None else math.nan
                    sl = px - want * d if d == d else math.nan
                    d = tp_l[i] if tp_l is not None else math.nan
                    tp = px + want * d if d == d else math.nan
        equity[i - start] = cash + (pos * (cl[i] - entry) * qty if pos else 0.0)
        held[i - start] = pos
    if pos != 0:
        close_out(n - 1, cl[n - 1], "end-of-data", int(t_open[n - 1]) + step_ms)
        equity[-1] = cash
    return BacktestResult(symbol, str(interval), strategy, t_open[start:], c[start:], equity, held, tuple(trades),
                          fees, costs.start_balance, "fast", time.perf_counter() - t0, dict(params or {}))


def run_fast(strategy: Any, frame: pd.DataFrame, costs: CostModel, *, symbol: str = "BTCUSDT",
             interval: str = "60", start: int = 0) -> BacktestResult:
    """Fast path for a strategy with `signals()`: its batched pass, then the lean loop."""
    t0 = time.perf_counter()
    targets = strategy.signals(frame)
    stops = strategy.stop_distances(frame) if hasattr(strategy, "stop_distances") else (None, None)
    res = fast_backtest(frame, targets, costs, stop_dist=stops[0], tp_dist=stops[1], symbol=symbol,
                        interval=interval, strategy=getattr(strategy, "name", ""),
                        params=_params_of(strategy), start=start)
    return _with_elapsed(res, time.perf_counter() - t0)


def _params_of(strategy: Any) -> dict[str, Any]:
    keys = ("fast", "slow", "atr_stop", "take_profit", "model_path")
    return {k: getattr(strategy, k) for k in keys if hasattr(strategy, k)}


def _with_elapsed(res: BacktestResult, elapsed: float) -> BacktestResult:
    from dataclasses import replace
    return replace(res, elapsed_s=elapsed)


def engine_backtest(settings: Any, strategy: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT",
                    interval: str = "60", start: int = 0,
                    progress: Callable[[int], None] | None = None) -> BacktestResult:
    """The engine path: TradingEngine.process_candle over SimExchange, candle by candle."""
    from bot.backtest_engine import run_engine  # the engine is heavy: import it only when used

    return run_engine(settings, strategy, frame, symbol=symbol, interval=interval, start=start,
                      progress=progress)


def run_backtest(settings: Any, strategy: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT",
                 interval: str = "60", path: str = "auto", start: int = 0,
                 progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Backtest `strategy` over `frame`: `path` "engine", "fast", or "auto" (fast when the strategy
    has a batched `signals()`, else the engine)."""
    if path not in ("auto", "fast", "engine"):
        raise ValueError(f"backtest path {path!r} is not known; allowed: auto, fast, engine")
    if path == "fast" and not strategy_has_fast_path(strategy):
        raise ValueError(f"strategy {getattr(strategy, 'name', strategy)!r} has no batched signals(); "
                         "use the engine path")
    if path == "fast" or (path == "auto" and strategy_has_fast_path(strategy)):
        return run_fast(strategy, frame, CostModel.from_settings(settings, qty_step=_qty_step(settings, symbol)),
                        symbol=symbol, interval=interval, start=start)
    return engine_backtest(settings, strategy, frame, symbol=symbol, interval=interval, start=start,
                           progress=progress)


def _qty_step(settings: Any, symbol: str) -> float:
    """The instrument's quantity step as the paper exchange knows it (0 when it cannot say)."""
    try:
        from bot.exchange.sim import SimExchange
    except ImportError:
        return 0.0
    try:
        return float(SimExchange(settings).get_instrument(symbol).qty_step)
    except Exception:  # an unknown symbol in the paper exchange: trade any quantity
        return 0.0
