"""The training environment: N trading episodes over real candles, stepped at once in numpy.

Time line of one step (no look-ahead): the agent sees the state of candle t (closed), chooses a
target position (0 flat, 1 long, 2 short); the order fills at the OPEN of candle t+1 with
slippage against us and the taker fee on the notional traded; the position is then marked to
market at the CLOSE of candle t+1, which is the next state. Optional stop-loss / take-profit
(risk settings) are checked against candle t+1's low/high after the fill; if both could have
been hit in the same candle the stop is assumed first (the pessimistic reading of a candle).

Position model: one position per episode using the whole equity at leverage 1 (the live sizing
rule of 5 % scales P&L, not the decision). Equity = entry equity x (1 + side x (price / entry
price - 1)), the P&L of a linear perpetual; shorts are off for spot. Funding is ignored.

Every array has one row per episode; nothing loops over episodes in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.reward_system import RewardSystem

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


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range (row t uses candles <= t); only used for ATR stops."""
    prev = np.concatenate([[close[0]], close[:-1]])
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))
    return pd.Series(tr).ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()


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
        from bot import features as F

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
        atr = np.concatenate([_atr(f["high"].to_numpy(np.float64), f["low"].to_numpy(np.float64),
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
    reports need: training runs ~15 % faster; equity, rewards and states are identical).
    Fees are FEE_RATE per side and SLIPPAGE_BPS against us on every fill.
    """

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
        self.use_stops = bool(use_stops)
        self.bookkeeping = bool(bookkeeping) or self.use_stops   # stop reports need the figures
        self.min_hold = np.asarray(min_hold, np.int64)   # a number, or one per episode
        self._holds = bool(np.any(self.min_hold > 0))
        self.fee = float(settings.FEE_RATE)
        self.slip = float(settings.SLIPPAGE_BPS) / 10_000.0
        self.reward_system = reward or RewardSystem.from_settings(settings)
        self.rng = np.random.default_rng(settings.SEED if seed is None else seed)
        # stop distances as fractions of the entry price, or ATR multiples
        self.stop_mode = settings.STOP_LOSS_MODE
        self.stop_pct = float(settings.STOP_LOSS_PCT)
        self.tp_pct = float(settings.STOP_LOSS_PCT * max(settings.MIN_REWARD_RISK, 1.0))
        self.stop_atr, self.tp_atr = float(settings.STOP_ATR_MULT), float(settings.TAKE_PROFIT_ATR_MULT)
        self.state_dim = data.features.shape[1] + _n_position_features()
        n = self.n_envs
        self.t = np.zeros(n, np.int64)
        self.end = np.zeros(n, np.int64)
        self.pos = np.zeros(n, np.int64)
        self.cash = np.ones(n)             # equity while flat
        self.entry_px = np.ones(n)
        self.entry_eq = np.ones(n)         # equity right after the entry fee
        self.trade_eq = np.ones(n)         # equity before the entry (trade P&L base)
        self.stop_px = np.zeros(n)
        self.tp_px = np.zeros(n)
        self.equity = np.ones(n)
        self.peak = np.ones(n)
        self.held = np.zeros(n, np.int64)
        self.fees = np.zeros(n)            # fees + slippage paid in this episode, equity units
        self.trades = np.zeros(n, np.int64)
        self._no_stop = np.zeros(n, bool)
        self._no_return = np.full(n, np.nan)
        self._no_stop.flags.writeable = self._no_return.flags.writeable = False

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
        self.t[i], self.end[i] = start, end
        self.pos[i] = 0
        for arr in (self.cash, self.equity, self.peak, self.entry_eq, self.trade_eq, self.entry_px):
            arr[i] = 1.0
        self.held[i] = 0
        self.fees[i] = 0.0
        self.trades[i] = 0

    def observe(self) -> np.ndarray:
        """State of every episode: market features of candle t + position features."""
        from bot import features as F

        upnl_pct = np.where(self.pos != 0, (self.equity / self.trade_eq - 1.0) * 100.0, 0.0)
        pf = F.position_features(self.pos, upnl_pct, self.held)
        return np.concatenate([self.data.features[self.t], pf], axis=1)

    # -- one step -------------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Apply target-position actions; returns (next_state, reward, terminated, truncated, info).

        Finished episodes restart at once; their last state is `info["final_state"]` (rows where
        terminated | truncated). `info` also has per episode: `action` (the action that was
        executed: differs from the one asked while `min_hold` keeps a position), `equity`,
        `fee` (paid this step), `closed_pnl` (P&L of a trade closed this step, net of both fees,
        else NaN), `stopped`, `episode_return` (growth of a finished episode, else NaN).
        """
        a = np.asarray(actions, dtype=np.int64).reshape(self.n_envs)
        if a.min() < 0 or a.max() >= self.n_actions:
            raise ValueError(f"actions must be in 0..{self.n_actions - 1} "
                             f"({'flat, long, short' if self.allow_short else 'flat, long; shorts are off'})")
        # Written for few numpy calls per step: arrays are replaced, never edited in place
        # (except by a reset), so results can be handed out without copies.
        d, fee, slip, w = self.data, self.fee, self.slip, self.reward_system.weights
        t1 = self.t + 1
        o, c = d.open[t1], d.close[t1]
        old = self.pos
        target = _TARGETS64[a]
        if self._holds:  # action persistence: a young position cannot be changed by the agent
            target = np.where((old != 0) & (self.held < self.min_hold), old, target)
        eq_before = self.equity
        dd_before = 1.0 - eq_before / self.peak if w.drawdown_penalty else 0.0
        books = self.bookkeeping
        fee_paid = np.zeros(self.n_envs) if books else None
        closed_pnl = np.full(self.n_envs, np.nan) if books else None
        change = target != old

        # 1. close the old position at the next open (slippage against us, fee on the notional)
        closing = change & (old != 0)
        if closing.any():
            self._exit(closing, o * (1.0 - old * slip), fee_paid, closed_pnl)
        # 2. open the new one at the same open
        opening = change & (target != 0)
        if opening.any():
            px = o * (1.0 + target * slip)
            e0 = self.cash
            f = fee * e0
            self.trade_eq = np.where(opening, e0, self.trade_eq)
            self.entry_eq = np.where(opening, e0 - f, self.entry_eq)
            self.entry_px = np.where(opening, px, self.entry_px)
            self.pos = np.where(opening, target, self.pos)
            self.held = np.where(opening, 0, self.held)
            if books:
                fee_paid += np.where(opening, f + e0 * slip, 0.0)
                self.trades = self.trades + opening
            if self.use_stops:
                self._place_stops(opening, px, target)
        # 3. stop-loss / take-profit inside candle t+1 (stop first when both were touched)
        stopped = self._no_stop
        if self.use_stops:
            stopped = self._check_stops(o, d.high[t1], d.low[t1], fee_paid, closed_pnl)
        # 4. mark to market at the close of candle t+1
        side = self.pos
        self.equity = np.maximum(np.where(side != 0, self.entry_eq * (1.0 + side * (c / self.entry_px - 1.0)),
                                          self.cash), 1e-6)
        ruined = self.equity < RUIN_FRACTION
        self.peak = np.maximum(self.peak, self.equity)
        self.held = np.where(side != 0, self.held + 1, 0)
        if books:
            self.fees = self.fees + fee_paid
        self.t = t1
        shaping = {}
        if w.trade_penalty:
            shaping["position_changes"] = np.abs(target - old)
        if w.drawdown_penalty:
            shaping["drawdown_before"], shaping["drawdown_after"] = dd_before, 1.0 - self.equity / self.peak
        if w.losing_time_penalty:
            shaping["losing"] = (side != 0) & (self.equity < self.trade_eq)
        if w.no_stop_bonus:
            shaping["closed_without_stop"] = closing
        reward = self.reward_system.compute(eq_before, self.equity, validate=False, **shaping)
        terminated = ruined
        truncated = (t1 >= self.end) & ~ruined
        done = terminated | truncated
        info = {"action": target_to_action(target) if self._holds else a, "equity": self.equity,
                "stopped": stopped, "position": self.pos, "time_ms": d.time_ms[t1],
                "trade_equity": self.trade_eq, "episode_return": self._no_return}
        if books:
            info["fee"], info["closed_pnl"] = fee_paid, closed_pnl
        if done.any():
            info.update(equity=self.equity.copy(), position=self.pos.copy(), trade_equity=self.trade_eq.copy(),
                        final_state=self.observe(), episode_return=np.where(done, self.equity - 1.0, np.nan))
            rows = np.flatnonzero(done)
            s, e = self._random_starts(len(rows))
            self._reset_rows(rows, s, e)
        return self.observe(), reward.astype(np.float32), terminated, truncated, info

    def _check_stops(self, o: np.ndarray, hi: np.ndarray, lo: np.ndarray, fee_paid: np.ndarray,
                     closed_pnl: np.ndarray) -> np.ndarray:
        side = self.pos
        live = side != 0
        hit_sl = live & np.where(side > 0, lo <= self.stop_px, hi >= self.stop_px)
        hit_tp = live & ~hit_sl & np.where(side > 0, hi >= self.tp_px, lo <= self.tp_px)
        hit = hit_sl | hit_tp
        if hit.any():
            level = np.where(hit_sl, self.stop_px, self.tp_px)
            # a gap through the level fills at the open, not at the level
            raw = np.where(hit_sl, np.where(side > 0, np.minimum(o, level), np.maximum(o, level)),
                           np.where(side > 0, np.maximum(o, level), np.minimum(o, level)))
            pnl_before = closed_pnl.copy()
            self._exit(hit, raw * (1.0 - side * self.slip), fee_paid, closed_pnl)
            # a flip that was stopped in the same candle: report both trades' P&L summed
            closed_pnl[:] = np.where(hit & np.isfinite(pnl_before), closed_pnl + pnl_before, closed_pnl)
        return hit_sl

    def _exit(self, mask: np.ndarray, px: np.ndarray, fee_paid: np.ndarray | None,
              closed_pnl: np.ndarray | None) -> None:
        side = self.pos
        qty = self.entry_eq / self.entry_px                     # units of the coin per unit equity
        gross = self.entry_eq + side * qty * (px - self.entry_px)
        if fee_paid is None:  # no bookkeeping: the same equity, fewer numpy calls
            self.cash = np.where(mask, np.maximum(gross - self.fee * qty * px, 1e-6), self.cash)
            self.pos = np.where(mask, 0, self.pos)
            self.held = np.where(mask, 0, self.held)
            return
        f = self.fee * qty * px
        # slippage is already inside px; count it as a cost for the report
        slip_cost = np.abs(qty * px * self.slip / (1.0 + self.slip))
        after = np.maximum(gross - f, 1e-6)
        self.cash = np.where(mask, after, self.cash)
        closed_pnl[mask] = (after - self.trade_eq)[mask]
        fee_paid += np.where(mask, f + slip_cost, 0.0)
        self.pos = np.where(mask, 0, self.pos)
        self.held = np.where(mask, 0, self.held)

    def _place_stops(self, mask: np.ndarray, px: np.ndarray, side: np.ndarray) -> None:
        if self.stop_mode == "atr":
            rel = self.data.atr[self.t] / self.data.close[self.t]   # ATR known at decision time t
            sl, tp = self.stop_atr * rel, self.tp_atr * rel
        else:
            sl, tp = np.full(self.n_envs, self.stop_pct), np.full(self.n_envs, self.tp_pct)
        self.stop_px = np.where(mask, px * (1.0 - side * sl), self.stop_px)
        self.tp_px = np.where(mask, px * (1.0 + side * tp), self.tp_px)


def _n_position_features() -> int:
    from bot import features as F

    return int(F.N_POSITION_FEATURES)
