"""The fast path of the backtester: a lean loop over a whole frame of targets, and its result types.

It applies the same fill, fee, slippage, sizing and stop rules as `SimExchange` and
`TradeExecutor` (see `bot.research.backtest` for the rules both paths follow), for strategies
that can say what they would do on every candle at once (`strategy.signals(frame)`). The
accounting and the stop trigger are the paper exchange's own functions (`bot.exchange.ledger`),
called with the loop's locals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import Any

import numpy as np
import pandas as pd

from bot.exchange.base import order_qty, round_to_tick
from bot.exchange.ledger import (
    STOP_LOSS,
    TAKE_PROFIT,
    apply_fill,
    exit_line,
    fee_of,
    stop_exit,
    stop_fill,
    taker_price,
)
from bot.research.trade_records import TradeRecords
from bot.strategies.base import BatchSignals
from bot.types import ClosedTrade, interval_ms

__all__ = ["CostModel", "BacktestResult", "fast_backtest", "run_fast", "buy_and_hold",
           "strategy_has_fast_path", "costs_for", "params_of", "with_elapsed", "rules_for", "DataRules",
           "price_tick"]


@dataclass(frozen=True)
class CostModel:
    """Money rules of a backtest: start balance, fees, slippage, sizing (all from Settings)."""

    start_balance: float = 1000.0
    fee_rate: float = 0.00055          # fraction of notional per fill
    slippage_bps: float = 2.0          # basis points of price, against us on every market fill
    size_pct: float = 0.05             # entry notional as a fraction of equity
    min_notional: float = 10.0         # entries are at least this much, USDT
    qty_step: float = 0.0              # quantity step of the instrument (0 = any quantity)
    tick_size: float = 0.0             # price step of the instrument (0 = any price)
    min_qty: float = 0.0               # the instrument's smallest order quantity
    min_order_value: float = 0.0       # the instrument's smallest order value, USDT
    leverage: float = 1.0
    max_risk_per_trade: float = 1.0    # the executor refuses an order risking more at its stop

    @classmethod
    def from_settings(cls, settings: Any, *, instrument: Any = None) -> "CostModel":
        rules = {} if instrument is None else {
            "qty_step": instrument.qty_step, "tick_size": instrument.tick_size, "min_qty": instrument.min_qty,
            "min_order_value": instrument.min_notional}
        return cls(start_balance=settings.PAPER_START_BALANCE, fee_rate=settings.FEE_RATE,
                   slippage_bps=settings.SLIPPAGE_BPS, size_pct=settings.POSITION_SIZE_PCT,
                   min_notional=settings.MIN_ORDER_USDT, leverage=settings.LEVERAGE,
                   max_risk_per_trade=settings.MAX_RISK_PER_TRADE, **rules)

    def notional_for(self, equity: float) -> float:
        """Entry notional: POSITION_SIZE_PCT of equity, at least MIN_ORDER_USDT."""
        return max(equity * self.size_pct, self.min_notional)

    def qty_for(self, notional: float, price: float, equity: float, stop: float | None) -> float:
        """The executor's quantity rule (`TradeExecutor.qty_for_notional` + its risk re-check):
        floor to the step, but never under MIN_ORDER_USDT (then the smallest step that meets it),
        and 0 when the rounded order would risk more than MAX_RISK_PER_TRADE at its stop."""
        q = order_qty(notional, price, self.qty_step, self.min_notional)
        if stop and q * abs(price - stop) > self.max_risk_per_trade * equity + 1e-9:
            return 0.0
        return q


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
    trades: Sequence[ClosedTrade]   # a tuple, or the fast path's TradeRecords (equal to one)
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
    return isinstance(strategy, BatchSignals)


_REASON_CODE = {STOP_LOSS: 1, TAKE_PROFIT: 2}


def _tick(price: float, tick: float) -> float:
    return round_to_tick(price, tick) if tick > 0 else price


def fast_backtest(frame: pd.DataFrame, targets: np.ndarray | None, costs: CostModel, *,
                  stop_dist: np.ndarray | None = None, tp_dist: np.ndarray | None = None,
                  symbol: str = "BTCUSDT", interval: str = "60", strategy: str = "",
                  params: dict[str, Any] | None = None, start: int = 0, end: int | None = None,
                  risk: Any = None, policy: Callable[[int, int, float, int], int] | None = None,
                  use_kernel: bool = True) -> BacktestResult:
    """The lean sequential loop over precomputed targets (see the module docstring for the rules).

    `targets`: (n, 3) int array, row i = target when candle i closes for each position state
    (column 0 flat, 1 long, 2 short), or (n,) when the target does not depend on the position.
    `stop_dist` / `tp_dist`: per-candle distances in price from the decision close (NaN = none).
    `start` / `end`: trade candles [start, end) only; earlier candles just warmed the indicators
    up (the targets were computed over the whole frame, causally, so nothing leaks backwards).
    `risk`: a `bot.research.risk_gate.RiskGate` -- the bot's RiskManager sizes, stops and vetoes every
    entry and watches the account limits, as in the engine. None: size by POSITION_SIZE_PCT only,
    stops only from the strategy.
    `policy(i, position, upnl_pct, held_candles) -> target`: instead of `targets`, for strategies
    whose decision depends on the open position's P&L and age (the DQN agent, bot/research/backtest_dqn.py).
    With targets, no `risk`, no quantity step and no price tick, the loop is compiled
    (`bot.research.fast_kernel`, same results to the last bit); `use_kernel=False` forces the
    Python loop (the tests compare the two).
    """
    t0 = time.perf_counter()
    o = frame["open"].to_numpy(dtype=np.float64)
    h = frame["high"].to_numpy(dtype=np.float64)
    lo = frame["low"].to_numpy(dtype=np.float64)
    c = frame["close"].to_numpy(dtype=np.float64)
    t_open = np.asarray(frame.index, dtype=np.int64)
    if targets is None:
        if policy is None:
            raise ValueError("fast_backtest needs targets or a policy")
        tg = None
    else:
        tg = np.asarray(targets)
        if tg.ndim == 1:
            tg = np.repeat(tg[:, None], 3, axis=1)
        if tg.shape != (len(c), 3):
            raise ValueError(f"targets must have shape ({len(c)}, 3) or ({len(c)},), got {tg.shape}")
    n = len(c) if end is None else min(int(end), len(c))
    if not 0 <= start < n:
        raise ValueError(f"backtest window [{start}, {n}) is empty (frame has {len(c)} candles)")
    close_ms = t_open + interval_ms(interval)   # each candle's close: when its decisions and fills happen
    fn = None
    if tg is not None and risk is None and costs.qty_step <= 0 and costs.tick_size <= 0 and use_kernel:
        from bot.research.fast_kernel import kernel
        fn = kernel()
    if fn is not None:
        from bot.research.fast_kernel import run_kernel
        money = (costs.start_balance, costs.fee_rate, costs.slippage_bps / 1e4, costs.size_pct, costs.min_notional,
                 costs.max_risk_per_trade, costs.min_qty, costs.min_order_value)
        equity, held, t_i, t_f, fees = run_kernel(fn, o, h, lo, c, close_ms, tg, stop_dist, tp_dist,  # type: ignore[arg-type]
                                                  start, n, money)
    else:
        equity, held, t_i, t_f, fees = _python_loop(o, h, lo, c, close_ms.tolist(), tg, stop_dist, tp_dist, start,
                                                    n, costs, risk, policy)
    trades = TradeRecords(symbol, t_i, t_f)     # ClosedTrade objects made when first read
    return BacktestResult(symbol, str(interval), strategy, t_open[start:n], c[start:n], equity, held, trades,
                          fees, costs.start_balance, "fast", time.perf_counter() - t0, dict(params or {}))


def _python_loop(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, close_ms: list[int],
                 tg: np.ndarray | None, stop_dist: np.ndarray | None, tp_dist: np.ndarray | None, start: int,
                 n: int, costs: CostModel, risk: Any, policy: Callable[[int, int, float, int], int] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """`fast_backtest`'s loop in Python, for what the compiled kernel cannot do (a risk gate, a
    policy, instrument rounding). Same outputs as `fast_kernel.run_kernel`; per-candle values go
    into preallocated arrays and each trade into a row of two arrays (no object per trade)."""
    # Python numbers: indexing a list is much cheaper than a numpy array in a loop. Targets are
    # one flat list (row i at 3i), not a list per row: n small lists would be n objects for the
    # garbage collector to walk on every full collection.
    tgl = tg.astype(np.int64).ravel().tolist() if tg is not None else None
    sl_l = stop_dist.tolist() if stop_dist is not None else None
    tp_l = tp_dist.tolist() if tp_dist is not None else None
    ol, hl, ll, cl = o.tolist(), h.tolist(), lo.tolist(), c.tolist()
    slip = costs.slippage_bps / 1e4
    fee_rate = costs.fee_rate
    tick = costs.tick_size
    min_qty, min_value = costs.min_qty, costs.min_order_value
    m = n - start
    equity = np.empty(m, dtype=np.float64)
    held = np.empty(m, dtype=np.int8)
    t_i = np.empty((m + 1, 4), dtype=np.int64)     # direction, entry ms, exit ms, reason code
    t_f = np.empty((m + 1, 5), dtype=np.float64)   # qty, entry, exit, realised before fees, fees
    k = 0
    cash = costs.start_balance      # wallet balance: realised P&L and fees included
    pos = 0                         # +1 long, -1 short, 0 flat
    size = entry = 0.0              # the position, signed, and its entry price (bot.exchange.ledger)
    base = cash                     # equity marked at price X is base + size * X (ledger.exit_line)
    sl = tp = math.nan
    entry_ms = 0
    entry_i = 0
    entry_fee = 0.0
    fees = 0.0

    def close_out(price: float, reason: int, at_ms: int) -> None:
        """A fill of the whole position at `price` (bot.exchange.ledger's arithmetic)."""
        nonlocal cash, pos, size, entry, fees, base, k
        qty = abs(size)
        fee = fee_of(qty, price, fee_rate)
        gained = apply_fill(size, entry, -size, price)[3]
        cash += gained - fee
        fees += fee
        t_i[k] = (pos, entry_ms, at_ms, reason)
        t_f[k] = (qty, entry, price, gained, entry_fee + fee)
        k += 1
        pos, size, entry, base = 0, 0.0, 0.0, cash

    for i in range(start, n):
        if pos != 0 and (sl == sl or tp == tp):
            hit = stop_exit(pos, ol[i], hl[i], ll[i], sl, tp)   # the paper exchange's rule ...
            if hit is not None:                                  # ... and its slipped fill
                close_out(stop_fill(hit[0], pos, slip, tick), _REASON_CODE[hit[1]], close_ms[i])
        if risk is not None:
            risk.check(base + size * cl[i], close_ms[i])
        if i == n - 1:
            want = pos        # no decision on the last candle: what is open closes at end of data below
        elif tgl is not None:
            want = tgl[3 * i + pos % 3]
        elif pos:
            want = policy(i, pos, pos * (cl[i] / entry - 1.0) * 100.0, i - entry_i)  # type: ignore[misc]
        else:
            want = policy(i, 0, 0.0, 0)  # type: ignore[misc]
        if want != pos:
            # a reversal is a close then an open, as the executor sends it: the new size
            # depends on the cash the close left
            px = cl[i]
            at = close_ms[i]
            if pos != 0:
                close_out(_tick(taker_price(px, -pos, slip), tick), 0, at)
            if want != 0:
                d = sl_l[i] if sl_l is not None else math.nan
                want_sl = px - want * d if d == d else None
                d = tp_l[i] if tp_l is not None else math.nan
                want_tp = px + want * d if d == d else None
                if risk is None:
                    verdict = (costs.notional_for(cash), want_sl, want_tp)
                else:
                    verdict = risk.entry(i, want, px, cash, want_sl, want_tp, at)
                q = costs.qty_for(verdict[0], px, cash, verdict[1]) if verdict is not None else 0.0
                if q > 0 and q >= min_qty - 1e-12 and q * px >= min_value - 1e-9:  # else the executor refuses
                    fill = _tick(taker_price(px, want, slip), tick)
                    size, entry = apply_fill(0.0, 0.0, want * q, fill)[:2]
                    pos, entry_ms, entry_i = want, at, i
                    entry_fee = fee_of(q, fill, fee_rate)
                    cash -= entry_fee
                    fees += entry_fee
                    base = exit_line(cash, size, entry, fee_rate)[0]
                    sl = _tick(verdict[1], tick) if verdict[1] else math.nan
                    tp = _tick(verdict[2], tick) if verdict[2] else math.nan
        equity[i - start] = base + size * cl[i]
        held[i - start] = pos
    if pos != 0:
        last = cl[n - 1]
        close_out(_tick(taker_price(last, -pos, slip), tick), 3, close_ms[n - 1])
        equity[-1] = cash
    return equity, held, t_i[:k], t_f[:k], fees


def run_fast(strategy: Any, frame: pd.DataFrame, costs: CostModel, *, symbol: str = "BTCUSDT",
             interval: str = "60", start: int = 0, settings: Any = None) -> BacktestResult:
    """Fast path for a strategy with `signals()`: its batched pass, then the lean loop.
    With `settings`, the bot's risk manager judges every entry (`bot.research.risk_gate.RiskGate`)."""
    t0 = time.perf_counter()
    targets = strategy.signals(frame)
    stops = strategy.stop_distances(frame)
    gate = None
    if settings is not None:
        from bot.research.risk_gate import RiskGate
        gate = RiskGate(settings, frame, symbol=symbol)
    res = fast_backtest(frame, targets, costs, stop_dist=stops[0], tp_dist=stops[1], symbol=symbol,
                        interval=interval, strategy=getattr(strategy, "name", ""),
                        params=params_of(strategy), start=start, risk=gate)
    return with_elapsed(res, time.perf_counter() - t0)


def params_of(strategy: Any) -> dict[str, Any]:
    keys = ("fast", "slow", "atr_stop", "take_profit", "model_path")
    return {k: getattr(strategy, k) for k in keys if hasattr(strategy, k)}


def with_elapsed(res: BacktestResult, elapsed: float) -> BacktestResult:
    return _replace(res, elapsed_s=elapsed)


def price_tick(prices: np.ndarray) -> float:
    """The price step the data itself shows: 10^-d for the fewest decimals d that write every price."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p)][:20_000]
    for d in range(0, 10):
        scaled = p * 10.0 ** d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return float(f"{10.0 ** -d:.10g}")
    return 1e-10


class DataRules:
    """Instrument rules for a symbol Bybit's table does not know, read off its candles: the price
    tick from the prices' decimals, any quantity, no minimum order (the bot's own MIN_ORDER_USDT
    sizing floor still applies). Serves `SimExchange` as its `instrument_source`."""

    def __init__(self, settings: Any, symbol: str, frame: pd.DataFrame) -> None:
        from bot.exchange.base import Instrument

        cat = settings.EXCHANGE_CATEGORY
        tick = price_tick(frame[["open", "high", "low", "close"]].to_numpy().ravel())
        self.instrument = Instrument(symbol=symbol, tick_size=tick, qty_step=0.0, min_qty=0.0, min_notional=0.0,
                                     max_leverage=1 if cat == "spot" else 100, base_coin=symbol, category=cat)

    def get_instrument(self, symbol: str) -> Any:
        from bot.errors import DataError

        if symbol != self.instrument.symbol:
            raise DataError(f"these rules are {self.instrument.symbol}'s, not {symbol}'s")
        return self.instrument

    def describe(self) -> str:
        return (f"instrument rules for {self.instrument.symbol} derived from the data (no recorded Bybit rules): "
                f"price tick {self.instrument.tick_size:g}, any quantity, no minimum order")


def rules_for(settings: Any, symbol: str, frame: pd.DataFrame | None) -> DataRules | None:
    """None when Bybit's table knows `symbol` (its recorded rules apply), else rules from the data."""
    from bot.exchange.instruments import known_instrument

    if known_instrument(symbol, settings.EXCHANGE_CATEGORY) is not None or frame is None or not len(frame):
        return None
    return DataRules(settings, symbol, frame)


def costs_for(settings: Any, symbol: str, frame: pd.DataFrame | None = None) -> CostModel:
    """The cost model of `settings` with the instrument rules the paper exchange uses for `symbol`
    (Bybit's recorded rules, or for a symbol it does not list, rules read off the data)."""
    from bot.exchange.sim import SimExchange

    sim = SimExchange(settings, instrument_source=rules_for(settings, symbol, frame))
    return CostModel.from_settings(settings, instrument=sim.get_instrument(symbol))
