"""The fast path's loop compiled: precomputed targets, no risk manager, no instrument rounding.

`bot.research.fast_path.fast_backtest` runs this kernel when a backtest needs nothing the
kernel cannot do: targets known in advance (no `policy`), entries sized by the cost model alone
(no `risk` gate), and no quantity step or price tick (those round in `decimal`, which a compiled
loop cannot call). The optimiser's folds and the benchmarks are such backtests; the CLI's (the
risk manager judges every entry) and the DQN agent's are not and keep the Python loop.

The arithmetic is `bot.exchange.ledger`'s, line for line, in the same order, so the results are
the same to the last bit (self_test/research/test_fast_kernel.py compares both loops on the seed
candles). numba compiles it once per machine (`cache=True` keeps the machine code next to this
file); numba is imported only when a backtest first runs the kernel, so a command that never
does pays nothing for it. Without numba the Python loop runs instead (same results, slower).

Trades go into preallocated arrays (at most one round trip per candle, plus the end of data):
the loop allocates nothing per trade or per candle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["REASONS", "kernel", "run_kernel"]

# reason codes of the trade arrays, in the order of `REASONS`
SIGNAL, STOP_LOSS, TAKE_PROFIT, END_OF_DATA = 0, 1, 2, 3
REASONS = ("signal", "stop-loss", "take-profit", "end-of-data")

_compiled: Callable[..., Any] | None = None
_tried = False


def _loop(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, close_ms: np.ndarray,
          tg: np.ndarray, sl_d: np.ndarray, tp_d: np.ndarray, start: int, n: int, money: np.ndarray,
          equity: np.ndarray, held: np.ndarray, t_i: np.ndarray, t_f: np.ndarray) -> tuple[int, float]:
    """One backtest. `money` = (start balance, fee rate, slippage fraction, size_pct,
    min_notional, max_risk_per_trade, min_qty, min_order_value). Writes `equity` and `held`
    (one entry per candle from `start`), and per trade `t_i` = (direction, entry ms, exit ms,
    reason) and `t_f` = (qty, entry, exit, realised before fees, fees). Returns (trades, fees)."""
    cash = money[0]
    fee_rate, slip, size_pct, min_notional = money[1], money[2], money[3], money[4]
    max_risk, min_qty, min_value = money[5], money[6], money[7]
    pos = 0
    size = 0.0
    entry = 0.0
    base = cash
    sl = np.nan
    tp = np.nan
    entry_ms = 0
    entry_fee = 0.0
    fees = 0.0
    k = 0
    for i in range(start, n):
        px = c[i]
        stop_px = np.nan
        why = SIGNAL
        if pos != 0 and (sl == sl or tp == tp):          # ledger.stop_exit
            op, hi, low = o[i], h[i], lo[i]
            if pos > 0:
                if op <= sl:
                    stop_px, why = op, STOP_LOSS
                elif op >= tp:
                    stop_px, why = op, TAKE_PROFIT
                elif low <= sl:
                    stop_px, why = sl, STOP_LOSS
                elif hi >= tp:
                    stop_px, why = tp, TAKE_PROFIT
            else:
                if op >= sl:
                    stop_px, why = op, STOP_LOSS
                elif op <= tp:
                    stop_px, why = op, TAKE_PROFIT
                elif hi >= sl:
                    stop_px, why = sl, STOP_LOSS
                elif low <= tp:
                    stop_px, why = tp, TAKE_PROFIT
        want = pos
        for j in range(2):
            # the candle's fills that close: the stop's (j = 0), then the decision's (j = 1)
            if j == 0:
                if stop_px != stop_px:
                    continue
                fill = stop_px + (-pos) * stop_px * slip          # ledger.stop_fill: a stop slips too
            else:
                # no decision on the last candle: what is open closes at the end of data below
                want = pos if i == n - 1 else int(tg[i, 0 if pos == 0 else (1 if pos > 0 else 2)])
                if want == pos or pos == 0:
                    break
                fill, why = px + (-pos) * px * slip, SIGNAL       # ledger.taker_price
            qty = abs(size)                                   # close_out: ledger.apply_fill + fee_of
            fee = qty * fill * fee_rate
            gained = (1.0 if size > 0.0 else -1.0) * (fill - entry) * qty
            cash += gained - fee
            fees += fee
            t_i[k, 0], t_i[k, 1], t_i[k, 2], t_i[k, 3] = pos, entry_ms, close_ms[i], why
            t_f[k, 0], t_f[k, 1], t_f[k, 2], t_f[k, 3], t_f[k, 4] = qty, entry, fill, gained, entry_fee + fee
            k += 1
            pos, size, entry, base = 0, 0.0, 0.0, cash
        if want != pos and want != 0:
            d = sl_d[i]
            has_sl = d == d
            want_sl = px - want * d if has_sl else 0.0
            d = tp_d[i]
            has_tp = d == d
            want_tp = px + want * d if has_tp else 0.0
            notional = max(cash * size_pct, min_notional)       # CostModel.notional_for
            q = notional / px                                   # base.order_qty with no step
            if q * px < min_notional - 1e-9 <= notional:
                q = min_notional / px
            if has_sl and want_sl != 0.0 and q * abs(px - want_sl) > max_risk * cash + 1e-9:
                q = 0.0                                         # CostModel.qty_for's risk re-check
            if q > 0 and q >= min_qty - 1e-12 and q * px >= min_value - 1e-9:
                fill = px + want * px * slip
                size, entry = want * q, fill
                pos, entry_ms = want, close_ms[i]
                entry_fee = abs(q) * fill * fee_rate
                cash -= entry_fee
                fees += entry_fee
                base = cash - size * entry                      # ledger.exit_line
                sl = want_sl if has_sl and want_sl != 0.0 else np.nan
                tp = want_tp if has_tp and want_tp != 0.0 else np.nan
        equity[i - start] = base + size * px
        held[i - start] = pos
    if pos != 0:
        last = c[n - 1]
        close_px = last + (-pos) * last * slip
        qty = abs(size)
        fee = qty * close_px * fee_rate
        direction = 1.0 if size > 0.0 else -1.0
        gained = direction * (close_px - entry) * qty
        cash += gained - fee
        fees += fee
        t_i[k, 0], t_i[k, 1], t_i[k, 2], t_i[k, 3] = pos, entry_ms, close_ms[n - 1], END_OF_DATA
        t_f[k, 0], t_f[k, 1], t_f[k, 2], t_f[k, 3], t_f[k, 4] = qty, entry, close_px, gained, entry_fee + fee
        k += 1
        equity[n - 1 - start] = cash
    return k, fees


def kernel() -> Callable[..., Any] | None:
    """The compiled loop, or None when numba is not installed (then the Python loop runs)."""
    global _compiled, _tried
    if not _tried:
        _tried = True
        try:
            import numba
        except ImportError:
            return None
        _compiled = numba.njit(cache=True, nogil=True)(_loop)
    return _compiled


def run_kernel(fn: Callable[..., Any], o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
               close_ms: np.ndarray, tg: np.ndarray, sl_d: np.ndarray | None, tp_d: np.ndarray | None,
               start: int, n: int, money: tuple[float, ...]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Run `fn` (the compiled `_loop`, or `_loop` itself) with arrays it can take: returns
    (equity, held, trade ints, trade floats, fees) with the trade arrays cut to the trades made."""
    m = n - start
    nan = np.full(len(c), np.nan)
    equity = np.empty(m, dtype=np.float64)
    held = np.empty(m, dtype=np.int8)
    t_i = np.empty((m + 1, 4), dtype=np.int64)
    t_f = np.empty((m + 1, 5), dtype=np.float64)
    k, fees = fn(o, h, lo, c, close_ms, np.ascontiguousarray(tg, dtype=np.int8),
                 nan if sl_d is None else np.ascontiguousarray(sl_d, dtype=np.float64),
                 nan if tp_d is None else np.ascontiguousarray(tp_d, dtype=np.float64),
                 start, n, np.asarray(money, dtype=np.float64), equity, held, t_i, t_f)
    return equity, held, t_i[:k], t_f[:k], float(fees)
