"""The training environment: N trading episodes over real candles, stepped at once in numpy.

Time line of one step (no look-ahead): the agent sees the state of candle t (closed), chooses a
target position (0 flat, 1 long, 2 short); the order fills at the OPEN of candle t+1 with
slippage against us and the taker fee on the notional traded; the position is then marked to
market at the CLOSE of candle t+1, which is the next state. Optional stop-loss / take-profit
(risk settings) are checked against candle t+1 after the fill by the paper exchange's rule
(`bot.exchange.ledger.stop_exit`: a gap fills at the open; if both could have been hit in the
same candle the stop is assumed first, the pessimistic reading of a candle).

Position model: one position per episode using the whole equity at leverage 1 (the live sizing
rule of 5 % scales P&L, not the decision). Equity = entry equity x (1 + side x (price / entry
price - 1)), the P&L of a linear perpetual, kept in the linear form of the ledger's `exit_line`
(bot/exchange/ledger.py); shorts are off for spot. Funding is ignored.

Every array has one row per episode; nothing loops over episodes in Python (but the stop check
over the few whose candle reached a level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.agent.reward_system import RewardSystem
from bot.exchange.ledger import STOP_LOSS, exit_line, fee_of, stop_exit, taker_price

__all__ = ["TradingEnv", "MarketData", "ACTION_TARGETS", "FLAT_ACTION", "LONG_ACTION", "SHORT_ACTION",
           "action_to_target", "target_to_action", "RUIN_FRACTION"]

FLAT_ACTION, LONG_ACTION, SHORT_ACTION = 0, 1, 2
ACTION_TARGETS = np.array([0, 1, -1], dtype=np.int8)   # action index -> target position
RUIN_FRACTION = 0.05   # an episode whose equity falls below 5 % of its start ends (terminal)
_TARGETS64 = ACTION_TARGETS.astype(np.int64)


def action_to_target(action: Any) -> Any:
    """Action index {0, 1, 2} -> target position {0, +1, -1}."""
    t = ACTION_TARGETS[np.asarray(action, dtype=np.int64)]
    return int(t) if np.ndim(t) == 0 else t


def target_to_action(target: Any) -> Any:
    """Target position {0, +1, -1} -> action index {0, 1, 2}."""
    a = np.where(np.asarray(target) < 0, SHORT_ACTION, np.asarray(target)).astype(np.int64)
    return int(a) if np.ndim(a) == 0 else a


@dataclass(frozen=True)
class MarketData:
    """Prices and market features of one or more candle frames laid end to end.

    Episodes never cross from one frame into the next: `segments` holds each frame's usable
    [first, last] row (first = first row whose features are complete).
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    time_ms: np.ndarray
    features: np.ndarray          # (T, M) float32, warm-up rows zero-filled (never visited)
    atr: np.ndarray
    segments: np.ndarray          # (S, 2) int64 [first, last] rows per frame
    feature_names: tuple[str, ...]

    @classmethod
    def from_frames(cls, frames: pd.DataFrame | Sequence[pd.DataFrame], *, settings: Any,
                    window: int | None = None) -> "MarketData":
        from bot.analysis import features as F
        from bot.analysis import indicators as ind

        frames = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
        window = int(window or settings.STATE_WINDOW)
        parts, segs, offset = [], [], 0
        for frame in frames:
            if len(frame) < 3:
                raise ValueError(f"a training frame needs at least 3 candles, got {len(frame)}")
            x = np.asarray(F.market_features(frame, window=window, settings=settings), dtype=np.float64)
            complete = np.flatnonzero(np.isfinite(x).all(axis=1))
            if len(complete) == 0 or complete[0] >= len(frame) - 2:
                raise ValueError(f"frame of {len(frame)} candles is shorter than the feature warm-up "
                                 f"({F.warmup_length(window, settings)} candles) plus 2")
            segs.append((offset + complete[0], offset + len(frame) - 1))
            parts.append((frame, np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)))
            offset += len(frame)
        cat = lambda col: np.concatenate([f[col].to_numpy(np.float64) for f, _ in parts])  # noqa: E731
        o, h, lo, c = cat("open"), cat("high"), cat("low"), cat("close")
        # the bot's ATR (Wilder, as the risk manager's stops use), NaN before ATR_PERIOD candles:
        # never visited, the features' warm-up is longer
        atr = np.concatenate([ind.atr(f["high"].to_numpy(np.float64), f["low"].to_numpy(np.float64),
                                      f["close"].to_numpy(np.float64), settings.ATR_PERIOD) for f, _ in parts])
        times = np.concatenate([f.index.to_numpy(np.int64) for f, _ in parts])
        return cls(o, h, lo, c, times, np.concatenate([x for _, x in parts]), atr,
                   np.asarray(segs, dtype=np.int64), tuple(F.market_feature_names(window)))


class TradingEnv:
    """N parallel trading episodes over `MarketData`; `reset()` then `step(actions)`.

    Options (keyword-only): `n_envs`, `episode_length` (candles, default EPISODE_LENGTH),
    `allow_short` (default: the market allows it), `use_stops` (stop-loss/take-profit from the
    risk settings), `min_hold` (candles a position must be held before the agent may change it:
    action persistence against overtrading; stops still fire), `reward` (a RewardSystem),
    `seed`, `bookkeeping` (False skips the per-step fee and closed-trade figures that only
    reports need; equity, rewards and states are identical).
    Fees are FEE_RATE per side and SLIPPAGE_BPS against us on every fill.

    Speed: a step is a few dozen numpy calls on arrays of N, whatever N is, so at N = 64 the
    cost is per-call overhead, not arithmetic. Hence the state is kept in a form where every
    quantity is linear: an episode holds `qty` coins (signed) and `base` cash-like equity, its
    marked equity is `base + qty * price`, and the value of closing it at a price is
    `base + qn * price` (`qn` = qty net of the exit fee). Entry and exit prices (slippage
    included), units per unit of equity and fee factors are precomputed per (candle, action),
    so opening, closing and flipping are one formula selected by the action, without a branch
    per case. Observations gather one row of a precomputed (candle, feature) table.
    """

    # target position of each action index; a subclass may hold other levels (bot/agent/variants.py's
    # position levels: fractions of the equity), every table below is built from it
    TARGETS: np.ndarray = _TARGETS64

    def __init__(self, data: MarketData, *, settings: Any, n_envs: int = 64, episode_length: int | None = None,
                 allow_short: bool | None = None, use_stops: bool = False, min_hold: int | np.ndarray = 0,
                 reward: RewardSystem | None = None, seed: int | None = None, bookkeeping: bool = True) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.data = data
        self.n_envs = int(n_envs)
        self.episode_length = int(episode_length or settings.EPISODE_LENGTH)
        self.allow_short = settings.allows_short if allow_short is None else bool(allow_short)
        self.n_actions = 3 if self.allow_short else 2
        self.n_positions = self.n_actions    # action indices step() takes (a subclass may map its own onto them)
        self.use_stops = bool(use_stops)
        self.bookkeeping = bool(bookkeeping) or self.use_stops   # stop reports need the figures
        self.min_hold = np.asarray(min_hold, np.int64)   # a number, or one per episode
        self._holds = bool(np.any(self.min_hold > 0))
        self.fee = float(settings.FEE_RATE)
        self.slip = float(settings.SLIPPAGE_BPS) / 10_000.0
        self.reward_system = reward or RewardSystem.from_settings(settings)
        w = self.reward_system.weights
        self._general_reward = bool(w.drawdown_penalty or w.losing_time_penalty or w.no_stop_bonus)
        self.rng = np.random.default_rng(settings.SEED if seed is None else seed)
        # stop distances as fractions of the entry price, or ATR multiples
        self.stop_mode = settings.STOP_LOSS_MODE
        self.stop_pct = float(settings.STOP_LOSS_PCT)
        self.tp_pct = float(settings.STOP_LOSS_PCT * max(settings.MIN_REWARD_RISK, 1.0))
        self.stop_atr, self.tp_atr = float(settings.STOP_ATR_MULT), float(settings.TAKE_PROFIT_ATR_MULT)
        self._build_tables()
        n = self.n_envs
        self.t = np.zeros(n, np.int64)
        self.end = np.zeros(n, np.int64)
        self.pa = np.zeros(n, np.int64)    # position as an action index (0 flat, 1 long, 2 short)
        self.pos = np.zeros(n, np.int64)   # the same as a side: 0, +1, -1
        # the linear state, one row each (replaced as a whole by one np.where per step):
        # 0 qty: coins held, signed (short < 0); 1 qn: qty net of the exit fee (closing at price p
        # yields base + qn * p); 2 base: equity = base + qty * price (the cash while flat);
        # 3 trade_eq: equity before the entry (trade P&L base; while flat, the cash)
        self._lin = np.zeros((4, n))
        self._lin[2:] = 1.0
        self.stop_px = np.zeros(n)
        self.tp_px = np.zeros(n)
        self.equity = np.ones(n)
        self.peak = np.ones(n)
        self.held = np.zeros(n, np.int64)
        self.fees = np.zeros(n)            # fees + slippage paid in this episode, equity units
        self.trades = np.zeros(n, np.int64)
        self._no_stop = np.zeros(n, bool)
        self._no_return = np.full(n, np.nan)
        self._no_end = np.zeros(n, bool)
        self._no_stop.flags.writeable = self._no_return.flags.writeable = self._no_end.flags.writeable = False
        self._left = 0                     # steps until the first episode reaches its end

    def _build_tables(self) -> None:
        """Per (candle, action) prices and per-action factors, flattened as [candle * k + action]."""
        from bot.analysis import features as F

        d, fee, slip = self.data, self.fee, self.slip
        targets = self.TARGETS
        side = targets.astype(np.float64)
        entry_px = taker_price(d.open[:, None], side, slip)
        self._exit_px = taker_price(d.open[:, None], -side, slip).ravel()    # sell long / buy back short
        self._entry_px = entry_px.ravel()
        # the linear state of a position opened at candle t's open with equity 1, per (t, action),
        # from the ledger's `exit_line`: all-in, the entry fee comes off the whole equity and the
        # rest is the notional; the exit fee comes off the closing notional (qn)
        cash = np.where(side != 0, 1.0 - fee * np.abs(side), 1.0)   # the fee on the notional traded
        units = cash * side / entry_px
        base, qn = exit_line(cash, units, entry_px, fee)
        self._open_lin = np.stack([units, qn, base, np.ones_like(units)]).reshape(4, -1)
        # the trade penalty per step, by [old action * k + new action]: |new target - old target|
        k = len(side)
        self._k = k
        self._abs_side = np.abs(side)
        self._changes = np.abs(side[None, :] - side[:, None]).ravel()
        self._change_penalty = self.reward_system.weights.trade_penalty * self._changes
        self._penalise_changes = bool(self.reward_system.weights.trade_penalty)
        self._close, self._time_ms = d.close, d.time_ms
        # observation: market features of the candle, then position features from a table by
        # (position, candles held) and the unrealised P&L column computed per step
        m, p = d.features.shape[1], int(F.N_POSITION_FEATURES)
        self.state_dim = m + p
        self._m = m
        self._obs_table = np.zeros((len(d.close), m + p), np.float32)
        self._obs_table[:, :m] = d.features
        self._hsize = len(d.close) + 1
        # a flat episode's held count is left to run (it is reset on the next entry): its rows
        # of the table all hold the features of held = 0, as position_features is given then
        held = np.concatenate([np.zeros(self._hsize, np.int64) if t == 0 else np.arange(self._hsize)
                               for t in targets])
        self._pos_table = np.asarray(self.position_features(np.repeat(targets, self._hsize), 0.0, held),
                                     np.float32)
        self._upnl_scale = float(getattr(F, "UPNL_SCALE_PCT", 5.0))
        self._fast_obs = self._fast_obs_agrees(F)

    def position_features(self, position: Any, upnl_pct: Any, held: Any) -> np.ndarray:
        """The position part of the state (bot/analysis/features.py's contract for -1, 0, +1)."""
        from bot.analysis import features as F
        return F.position_features(position, upnl_pct, held)

    def _position_block(self, pa: np.ndarray, held: np.ndarray, eq_ratio: np.ndarray) -> np.ndarray:
        block = self._pos_table.take(pa * self._hsize + held, axis=0)
        x = np.subtract(eq_ratio, 1.0)
        x *= 100.0
        x /= self._upnl_scale
        block[:, 3] = np.tanh(x, out=x)
        return block

    def _fast_obs_agrees(self, F: Any) -> bool:
        """The table-driven position features equal `features.position_features` (they are the
        contract): checked once on a grid; if the feature code ever changes shape, observe()
        falls back to calling it every step."""
        if self._pos_table.shape[1] < 5:
            return False
        k = len(self.TARGETS)
        pa = np.repeat(np.arange(k), 12)
        held = np.minimum(np.tile(np.repeat([0, 1, 7, 300], 3), k), self._hsize - 1)   # short frames
        ratio = np.tile([0.93, 1.0, 1.0217], 4 * k)
        pos = self.TARGETS[pa]
        ratio = np.where(pos == 0, 1.0, ratio)
        want = self.position_features(pos, np.where(pos != 0, (ratio - 1.0) * 100.0, 0.0), np.where(pos != 0, held, 0))
        got = self._position_block(pa, held, ratio)
        return want.shape == got.shape and want.dtype == got.dtype and bool(np.array_equal(want, got))

    # -- episodes -------------------------------------------------------------------------------
    def _random_starts(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        segs = self.data.segments
        length = segs[:, 1] - segs[:, 0]
        seg = self.rng.choice(len(segs), size=k, p=length / length.sum())
        lo, hi = segs[seg, 0], segs[seg, 1]
        span = np.minimum(self.episode_length, hi - lo)
        start = lo + (self.rng.random(k) * (hi - lo - span + 1)).astype(np.int64)
        return start, start + span

    def reset(self, *, starts: np.ndarray | None = None, ends: np.ndarray | None = None) -> np.ndarray:
        """Start every episode flat with equity 1, at random rows of the span or at `starts`
        (rows whose candle has just closed) running to `ends` (the last row marked)."""
        if starts is None:
            s, e = self._random_starts(self.n_envs)
        else:
            s = np.broadcast_to(np.asarray(starts, np.int64), (self.n_envs,)).copy()
            e = np.broadcast_to(np.asarray(ends, np.int64), (self.n_envs,)).copy()
            if np.any(e <= s) or np.any(s < 0) or np.any(e >= len(self.data.close)):
                raise ValueError(f"episode rows must satisfy 0 <= start < end < {len(self.data.close)}")
        self._reset_rows(np.arange(self.n_envs), s, e)
        return self.observe()

    def _reset_rows(self, i: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        # new arrays, not edits: the old ones may have been handed out in `info` (rare: cheap)
        self.t, self.end, self.pa, self.pos, self.held, self.trades, self._lin, self.fees, self.equity, self.peak = (
            x.copy() for x in (self.t, self.end, self.pa, self.pos, self.held, self.trades, self._lin, self.fees,
                               self.equity, self.peak))
        self.t[i], self.end[i] = start, end
        for arr in (self.pa, self.pos, self.held, self.trades):
            arr[i] = 0
        self._lin[:2, i], self._lin[2:, i] = 0.0, 1.0
        self.fees[i] = 0.0
        for arr in (self.equity, self.peak):
            arr[i] = 1.0
        self._left = int((self.end - self.t).min())

    # the rows of the linear state, read-only views of the current arrays
    qty = property(lambda self: self._lin[0])
    qn = property(lambda self: self._lin[1])
    base = property(lambda self: self._lin[2])
    trade_eq = property(lambda self: self._lin[3])

    def observe(self) -> np.ndarray:
        """State of every episode: market features of candle t + position features."""
        if self._fast_obs:
            # flat rows have trade_eq == equity (both the cash), so their P&L column is tanh(0)
            obs = self._obs_table.take(self.t, axis=0)
            obs[:, self._m:] = self._position_block(self.pa, self.held, self.equity / self.trade_eq)
            return obs
        upnl_pct = np.where(self.pos != 0, (self.equity / self.trade_eq - 1.0) * 100.0, 0.0)
        pf = self.position_features(self.pos, upnl_pct, np.where(self.pos != 0, self.held, 0))
        return np.concatenate([self.data.features[self.t], pf], axis=1)

    # -- one step -------------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Apply target-position actions; returns (next_state, reward, terminated, truncated, info).

        Finished episodes restart at once; their last state is `info["final_state"]` (rows where
        terminated | truncated). `info` also has per episode: `action` (the action that was
        executed: differs from the one asked while `min_hold` keeps a position), `equity`,
        `position`, `trade_equity` (equity before the open trade's entry; while flat, the cash),
        `fee` (paid this step), `closed_pnl` (P&L of a trade closed this step, net of both fees,
        else NaN), `stopped`, `episode_return` (growth of a finished episode, else NaN).
        """
        a = np.array(actions, dtype=np.int64).reshape(self.n_envs)   # a copy: it becomes the state
        if a.view(np.uint64).max() >= self.n_positions:   # negative actions wrap to huge values
            raise ValueError(f"actions must be in 0..{self.n_positions - 1} "
                             f"({'flat, long, short' if self.allow_short else 'flat, long; shorts are off'})")
        # Written for few numpy calls per step: state arrays are replaced, never edited in place
        # (except by a reset), so results can be handed out without copies.
        old, t1 = self.pa, self.t + 1
        if self._holds:  # action persistence: a young position cannot be changed by the agent
            a = np.where((old != 0) & (self.held < self.min_hold), old, a)
        change = a != old
        row = t1 * self._k
        lin = self._lin
        # 1. what the old position is worth closed at the next open (slippage and fee paid);
        #    the cash itself for a flat episode (qn = 0)
        exit_px = self._exit_px.take(row + old)
        value = np.maximum(lin[2] + lin[1] * exit_px, 1e-6)
        # 2. the new position opened at the same open with that value; the episodes that keep
        #    their position keep everything
        new = self._open_lin.take(row + a, axis=1)
        new *= value
        books = self.bookkeeping
        if books:
            closing, opening = change & (old != 0), change & (a != 0)
            notional = np.abs(lin[0]) * exit_px
            fee_paid = (np.where(closing, self.fee * notional + notional * self.slip / (1.0 + self.slip), 0.0)
                        + np.where(opening, (self.fee * value + value * self.slip) * self._abs_side.take(a), 0.0))
            closed_pnl = np.where(closing, value - lin[3], np.nan)
            self.trades = self.trades + opening
        self._lin = np.where(change, new, lin)
        self.pa = a
        # 3. stop-loss / take-profit inside candle t+1 (stop first when both were touched)
        stopped = self._no_stop
        if self.use_stops:
            if opening.any():
                self._place_stops(opening, self._entry_px.take(row + a), np.sign(self.TARGETS.take(a)))
            stopped = self._check_stops(t1, fee_paid, closed_pnl)
        # 4. mark to market at the close of candle t+1
        pos = self.TARGETS.take(self.pa)
        lin = self._lin
        equity = np.maximum(lin[2] + lin[0] * self._close.take(t1), 1e-6)
        eq_before, peak_before = self.equity, self.peak
        self.equity, self.pos, self.t = equity, pos, t1
        self.peak = np.maximum(peak_before, equity)
        self.held = np.where(change, 1, self.held + 1)   # while flat it counts on, unused
        if books:
            self.fees = self.fees + fee_paid
        if self._general_reward:
            reward = self.reward_system.compute(
                eq_before, equity, validate=False, position_changes=self._changes.take(old * self._k + a),
                drawdown_before=1.0 - eq_before / peak_before, drawdown_after=1.0 - equity / self.peak,
                losing=(pos != 0) & (equity < self.trade_eq), closed_without_stop=change & (old != 0))
        else:  # the same formula as RewardSystem.compute, inlined: its call costs as much as the step
            reward = np.log(equity / eq_before)
            if self._penalise_changes:
                reward = reward - self._change_penalty.take(old * self._k + a)
        self._left -= 1
        ending = self._left <= 0 or equity.min() < RUIN_FRACTION   # episodes run in step: the first end is known
        terminated, truncated = (equity < RUIN_FRACTION, t1 >= self.end) if ending else (self._no_end, self._no_end)
        info = {"action": a, "equity": equity, "stopped": stopped, "position": pos,
                "time_ms": self._time_ms.take(t1), "trade_equity": lin[3],
                "episode_return": self._no_return}
        if books:
            info["fee"], info["closed_pnl"] = fee_paid, closed_pnl
        if ending:
            done = terminated | truncated
            truncated &= ~terminated
            info.update(final_state=self.observe(), episode_return=np.where(done, equity - 1.0, np.nan))
            rows = np.flatnonzero(done)
            s, e = self._random_starts(len(rows))
            self._reset_rows(rows, s, e)
        return self.observe(), reward.astype(np.float32), terminated, truncated, info

    def _check_stops(self, t1: np.ndarray, fee_paid: np.ndarray, closed_pnl: np.ndarray) -> np.ndarray:
        d = self.data
        o, hi, lo = d.open[t1], d.high[t1], d.low[t1]
        side = np.sign(self.TARGETS.take(self.pa))
        sl, tp = self.stop_px, self.tp_px
        # A level can only be hit by a candle whose range leaves the band between the two levels;
        # for those few episodes the paper exchange's rule (`stop_exit`) says which, and at what price.
        rows = np.flatnonzero((side != 0) & ((lo <= np.minimum(sl, tp)) | (hi >= np.maximum(sl, tp))))
        hit_sl = np.zeros(self.n_envs, bool)
        if len(rows) == 0:
            return hit_sl
        hit = np.zeros(self.n_envs, bool)
        raw = np.zeros(self.n_envs)
        for r in rows.tolist():
            got = stop_exit(int(side[r]), float(o[r]), float(hi[r]), float(lo[r]), float(sl[r]), float(tp[r]))
            if got is not None:
                hit[r], raw[r], hit_sl[r] = True, got[0], got[1] == STOP_LOSS
        if hit.any():
            px = taker_price(raw, -side, self.slip)
            value = np.maximum(self.base + self.qn * px, 1e-6)
            notional = np.abs(self.qty) * px
            fee_paid += np.where(hit, fee_of(self.qty, px, self.fee) + notional * self.slip / (1.0 + self.slip), 0.0)
            pnl = value - self.trade_eq
            # a flip that was stopped in the same candle: report both trades' P&L summed
            closed_pnl[:] = np.where(hit, np.where(np.isfinite(closed_pnl), closed_pnl + pnl, pnl), closed_pnl)
            self.pa = np.where(hit, 0, self.pa)
            self._lin = np.where(hit, np.stack([np.zeros_like(value), np.zeros_like(value), value, value]),
                                 self._lin)
        return hit_sl

    def _place_stops(self, mask: np.ndarray, px: np.ndarray, side: np.ndarray) -> None:
        if self.stop_mode == "atr":
            rel = self.data.atr[self.t] / self.data.close[self.t]   # ATR known at decision time t
            sl, tp = self.stop_atr * rel, self.tp_atr * rel
        else:
            sl, tp = np.full(self.n_envs, self.stop_pct), np.full(self.n_envs, self.tp_pct)
        self.stop_px = np.where(mask, px * (1.0 - side * sl), self.stop_px)
        self.tp_px = np.where(mask, px * (1.0 + side * tp), self.tp_px)
