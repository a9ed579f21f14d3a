"""The DQN agent as a Strategy: `decide(context)` -> Decision(target in {-1, 0, +1}).

Wraps `SelfLearningBot` (bot/agent/self_learning.py). In the live / paper loop the engine calls
`decide`, computes the reward of the step with `bot.agent.reward_system.RewardSystem`, then
`observe(state, target, reward, next_state, done)` and `learn()`; `save()` writes a checkpoint.

The live state's market features are carried forward per pair by `bot.analysis.feature_stream.FeatureStream`
(tens of microseconds a candle instead of ~2 ms for the full computation over 2,000 candles);
the engine seeds each pair with `prime` when it adds it. A gap, candles out of order or a
revised candle make it fall back to the full computation, which reseeds the stream (debug log).

A backtest tells the strategy its candles first (`known_candles`, `KnowsCandles`): the stream is
then carried over them in one pass and the Q-values and choices of the states to come are
batched (bot/strategies/dqn_known.py), with the same decisions; paper and live trading, and any
candle not told, take the path above.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from bot.agent.environment import SHORT_ACTION, action_to_target, target_to_action
from bot.agent.numpy_q import NumpyQ, f32, sure_row
from bot.agent.numpy_q import sure as _sure
from bot.analysis import features as F
from bot.analysis.feature_stream import FeatureStream
from bot.errors import StrategyError
from bot.strategies.base import Decision, StrategyContext
from bot.strategies.dqn_known import ToldCandles
from bot.types import CANDLE_COLUMNS, interval_ms

__all__ = ["DQNStrategy"]

log = logging.getLogger("bot.agent")

FEATURE_HISTORY = 2_000   # candles used to compute the live state (EMA-200 has converged by then)
MAX_CATCH_UP = 500        # candles a pair's feature stream steps through before a recompute is cheaper
_STREAM_COLUMNS = ("high", "low", "close", "volume")
# a greedy decision's reason for 2 and 3 Q-values: `_choose`'s f"{x:.3f}" each, formatted at once
_GREEDY = {n: "greedy: Q flat/long/short = " + ", ".join(["%.3f"] * n) for n in (2, 3)}
_CANONICAL_STREAM_COLS = tuple(CANDLE_COLUMNS.index(k) for k in _STREAM_COLUMNS)


def _tail(context: StrategyContext) -> tuple[np.ndarray, np.ndarray] | None:
    """The context's candles as (open times, values in CANDLE_COLUMNS order) when the engine
    offers them without a frame (`bot.engine.candle_frames.CandleFrames.tail`), else None."""
    tail = getattr(context.candles, "tail", None)
    return tail(context.interval) if tail is not None else None


def _same_candle(a: StrategyContext, b: StrategyContext) -> bool:
    """Whether two contexts hold the same candles, position and extras at the same time (the
    engine's context for `decide` is the one `state_for` had, with the state added)."""
    return a.candles is b.candles and a.position is b.position and a.extra is b.extra and a.time_ms == b.time_ms


class _PairStream:
    """One pair's `FeatureStream` and the open time and values of the last candle it saw, to
    tell the next frame's new candles from a gap, a reorder or a revised candle."""

    def __init__(self, stream: Any, times: Any, vals: np.ndarray, cols: list[int]) -> None:
        self.stream = stream
        self.cols = cols
        self.pick = itemgetter(*cols)     # a candle's (high, low, close, volume) from its row as floats
        self.last_ms = int(times[-1])
        self.last = self.pick(vals[-1].tolist())
        steps = np.diff(np.asarray(times[-50:], dtype=np.int64))
        self.step = int(np.median(steps)) if len(steps) else 0
        self.set_row()

    def follow(self, times: Any, vals: np.ndarray, cols: list[int]) -> str:
        """Step the stream to the frame's last candle; '' when done, else why it cannot.
        `vals` is the frame's values, `cols` the positions of high, low, close, volume."""
        if cols != self.cols:
            return "the frame's columns changed"
        last_ms, pick = self.last_ms, self.pick
        if len(times) >= 2:
            before, newest = times[-2:].tolist()
            if before == last_ms and newest - last_ms == (self.step or newest - last_ms) and \
                    pick(vals[-2].tolist()) == self.last:
                # the usual case: exactly one new candle after the last seen one, which is unchanged
                cur = pick(vals[-1].tolist())
                self.stream.update(*cur)
                self.last_ms, self.last = newest, cur
                self.set_row()
                return ""
        newest = int(times[-1])
        if newest == last_ms:
            return "" if pick(vals[-1].tolist()) == self.last else "the last candle changed"
        if newest < last_ms:
            return "candles out of order"
        pos = int(times.searchsorted(last_ms))
        if pos >= len(times) or int(times[pos]) != last_ms:
            return "the last candle seen is no longer in the frame"
        if pick(vals[pos].tolist()) != self.last:
            return "the last candle seen changed"
        if len(times) - 1 - pos > MAX_CATCH_UP:
            return f"{len(times) - 1 - pos} new candles"
        new_t = np.asarray(times[pos:], dtype=np.int64)
        if self.step and np.any(np.diff(new_t) != self.step):
            return "a candle is missing"
        for h, lo, c, v in vals[pos + 1:, cols].tolist():
            self.stream.update(h, lo, c, v)
        self.last_ms, self.last = newest, pick(vals[-1].tolist())
        self.set_row()
        return ""

    def set_row(self) -> None:
        """The stream's row as the agent's input takes it: float32, NaN and inf made finite."""
        row = self.stream.row.astype(np.float32)
        self.row32 = row if np.isfinite(row).all() else np.nan_to_num(row)


class DQNStrategy:
    """The self-learning agent behind the Strategy protocol; a `base.LearningStrategy` (the engine
    trains it online and checkpoints it)."""

    name = "dqn"

    def __init__(self, settings: Any, *, model_path: str | Path | None = None, agent: Any = None) -> None:
        from bot.agent.self_learning import SelfLearningBot

        self.settings = settings
        self.agent = agent if agent is not None else SelfLearningBot(settings)
        self.model_path: Path | None = None
        if agent is None:
            if model_path is not None:
                self.model_path = self.agent.load(model_path)   # asked for: must exist and fit
            elif self.agent.store.latest() is not None:
                self.model_path = self.agent.load()
            if self.model_path is not None:   # the user should know what the agent carries over
                log.info("agent resumed from checkpoint %s: %d learner steps, epsilon %.3f", self.model_path.name,
                         self.agent.gradient_steps, self.agent.epsilon)
            else:
                log.warning("no trained DQN checkpoint in %s: the agent starts untrained "
                            "(run `python -m bot train` first)", self.agent.store.root)
            if self.model_path is not None:
                log.info("DQN checkpoint loaded: %s", self.checkpoint_info()["summary"])
        # per (symbol, interval): the live state's market features, carried forward candle by
        # candle (bot.analysis.feature_stream.FeatureStream) instead of recomputed over 2,000 candles each time
        self._streams: dict[tuple[str, str], _PairStream] = {}
        self.incremental = True   # False: every state from the full computation (tests compare)
        self._need: tuple[Any, int] = (None, 0)   # (settings, candles a state needs) once per settings
        self._fast_q: Any = False   # the NumPy forward pass (NumpyQ), made when first needed; None: torch only
        # the candles a backtest told (known_candles), the pairs' streams carried ahead over them
        # and the Q-values of states to come (dqn_known); _ahead: the pairs read ahead
        self._told = ToldCandles(self._streams, catch_up=MAX_CATCH_UP, cols=list(_CANONICAL_STREAM_COLS))
        self._ahead = self._told.ahead
        # the last state built from a told row, the context it was built for and the candles held
        # (None while flat: not needed), for `decide` on the context that carries that state
        self._told_state: tuple[Any, ...] | None = None

    def checkpoint_info(self) -> dict[str, Any]:
        """Which checkpoint the agent runs and its walk-forward record, for the window's Training
        tab: `name`, `path`, `summary` (one line), `variant`, `walk_forward` (the research
        protocol's out-of-sample record of this design and seed: metrics, `equity` with
        `time_ms`, buy-and-hold's), `epsilon`, `training`; all None-valued while untrained."""
        meta = dict(getattr(self.agent, "meta", {}) or {})
        wf = meta.get("walk_forward") or {}
        mine = wf.get("this_seed") or {}
        if self.model_path is None:
            summary = "none (untrained agent)"
        else:
            summary = f"{self.model_path.name} ({self.model_path})"
            if meta.get("variant"):
                summary += f", design {meta['variant']} seed {meta.get('seed')}"
            if mine:
                bh = (wf.get("buy_and_hold") or {}).get("sharpe", {}).get("mean")
                summary += (f"; walk-forward {wf.get('dataset')} {wf.get('test_span')}: return "
                            f"{mine.get('return_pct', float('nan')):+.1f} %, Sharpe {mine.get('sharpe', float('nan')):.2f}"
                            + (f" (buy-and-hold {bh:.2f})" if bh is not None else ""))
        return {"name": None if self.model_path is None else self.model_path.name,
                "path": None if self.model_path is None else str(self.model_path), "summary": summary,
                "variant": meta.get("variant"), "seed": meta.get("seed"), "trained_on": meta.get("trained_on"),
                "walk_forward": wf or None, "epsilon": self.agent.epsilon, "training": self.agent.training}

    # -- the knobs the UI shows -----------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        return self.agent.epsilon

    @property
    def training(self) -> bool:
        return self.agent.training

    @training.setter
    def training(self, value: bool) -> None:
        self.agent.training = bool(value)

    # -- deciding -------------------------------------------------------------------------------
    def state_for(self, context: StrategyContext) -> np.ndarray:
        """The state vector of the context's last candle: `context.state`, or built from its candles."""
        given = context.state
        if given is not None:
            s = np.asarray(given, np.float32)
            if s.shape != (self.agent.state_dim,):
                raise StrategyError(f"context.state has shape {s.shape}; the agent expects "
                                    f"({self.agent.state_dim},)")
            return s
        window = self.settings.STATE_WINDOW
        if self._need[0] is not self.settings:      # the settings are frozen: their warm-up once
            self._need = (self.settings, F.warmup_length(window, self.settings) + 1)
        need = self._need[1]
        arrays = _tail(context)      # the engine's candles as arrays: no frame built while the stream follows
        frame = None if arrays is not None else context.candles.get(context.interval)
        have = len(arrays[0]) if arrays is not None else (0 if frame is None else len(frame))
        if have < need:
            raise StrategyError(f"the DQN state needs {need} closed {context.interval} candles of "
                                f"{context.symbol}, got {have}")
        market = told = None
        pos = context.position_target
        if self._ahead:        # a told candle: its row read ahead (dqn_known.StreamAhead)
            told = self._told.state((context.symbol, context.interval), arrays if self.incremental else None)
            if told is not None:
                if pos == 0:      # the state built below, for a flat position (read only)
                    self._told_state = (told, context, None)
                    return told
                market = told[:len(told) - F.N_POSITION_FEATURES]
        if market is None:
            market = self._market_row(context.symbol, context.interval, frame, window, arrays=arrays,
                                      frame_of=lambda: context.candles[context.interval])
        upnl_pct = 0.0
        if context.position is not None and pos != 0 and context.position.entry_price > 0:
            upnl_pct = pos * (context.price / context.position.entry_price - 1.0) * 100.0
        held_as_told = self._held(context) if pos != 0 else None
        held = held_as_told or 0
        if market.dtype != np.float32 or held < 0:     # the full computation's row, or bad input: the checks
            return F.state_vector(np.nan_to_num(market), pos, upnl_pct, held)
        # F.state_vector's float32 row, built directly (its checks and broadcasting cost more than
        # the row): the market row (already finite) then one-hot flat/long/short, tanh(upnl / 5),
        # held / (held + 24), each computed in float64 and rounded to float32 as there
        m = len(market)
        if told is not None:       # a told candle's flat state: its market row, then the position's
            out = told.copy()
        else:
            out = np.empty(m + F.N_POSITION_FEATURES, dtype=np.float32)
            out[:m] = market
        out[m:] = (pos == 0, pos == 1, pos == -1,
                   # nan_to_num's NaN -> 0 (its inf -> max float gives tanh's 1 as inf does); tanh(+-0) = +-0
                   float(np.tanh((upnl_pct if upnl_pct == upnl_pct else 0.0) / F.UPNL_SCALE_PCT))
                   if upnl_pct else upnl_pct,
                   held / (held + F.HELD_HALF_LIFE))
        if told is not None:
            self._told_state = (out, context, held_as_told)
        return out

    def _market_row(self, symbol: str, interval: str, frame: Any, window: int, *,
                    arrays: tuple[np.ndarray, np.ndarray] | None = None,
                    frame_of: Callable[[], Any] | None = None) -> np.ndarray:
        """The market features of the frame's last candle: the pair's stream moved on by the
        candles it has not seen yet, or (first call, a gap, candles out of order or changed, a
        long pause) the full computation over the last FEATURE_HISTORY candles, which reseeds it.
        `arrays` (open times, values in CANDLE_COLUMNS order) stand for the frame while the stream
        follows; `frame_of()` builds the frame when it does not."""
        if frame is None and frame_of is not None and (not self.incremental or arrays is None):
            frame = frame_of()
        if not self.incremental:
            return F.market_features(frame.iloc[-FEATURE_HISTORY:], window=window, settings=self.settings)[-1]
        key = (symbol, interval)
        if arrays is not None:
            times, vals = arrays
            cols = list(_CANONICAL_STREAM_COLS)
        else:
            times = np.asarray(frame.index, dtype=np.int64)
            # the frame's values (a view of its one float64 block) and where the four columns are:
            # selecting columns by name would copy 2,000 rows through pandas (0.4 ms)
            vals = frame.to_numpy()
            cols = [frame.columns.get_loc(k) for k in _STREAM_COLUMNS]
        if key in self._ahead:     # read ahead (told candles): the stream as the ordinary path holds it
            self._streams[key] = self._ahead.pop(key).park()
        ps = self._streams.pop(key, None)     # back only when it followed: a failure never leaves half a step
        if ps is not None:
            why = ps.follow(times, vals, cols)
            if not why:
                self._streams[key] = ps
                return ps.row32
            log.debug("%s %s: DQN state features recomputed over %d candles (%s)", symbol, interval,
                      min(len(times), FEATURE_HISTORY), why)
        if frame is None:
            frame = frame_of() if frame_of is not None else None
        stream = FeatureStream(frame.iloc[-FEATURE_HISTORY:], window=window, settings=self.settings)
        ps = _PairStream(stream, times, vals, cols)
        self._streams[key] = ps
        if symbol in self._told.runs:      # told candles: carry the new seed ahead over them
            self._told.look_ahead(key)
        return ps.row32

    def known_candles(self, symbol: str, times: np.ndarray, values: np.ndarray) -> None:
        """The candles a backtest will feed for `symbol`, in order (`KnowsCandles`; `values` in
        CANDLE_COLUMNS order). Once the pair's stream is seeded (now, or from the history as
        without being told), it is carried over them in one pass and the Q-values of the states
        to come are batched (bot/strategies/dqn_known.py): the same decisions (targets, hence
        trades), a few microseconds a candle; `Decision.q_values` come from batched passes then
        and may differ from the one-row pass's in their last bits (~5e-6). No candles (the run is
        over): forget them; the pair's ordinary stream goes on from the last candle read."""
        if self.incremental or not len(times):
            self._told.tell(symbol, times, values)

    def holds_ahead(self, context: StrategyContext, decision: Decision) -> int:
        """`HoldsAhead`: after keeping the position on a told candle, on how many told candles
        after it the agent would keep it again (the choices batched ahead: `ToldCandles.holds_ahead`);
        0 while it learns, explores or decides with torch, and for a candle not told."""
        if not self._ahead or decision.target != context.position_target or context.state is None:
            return 0
        fast = self.numpy_pass()
        if fast is None:
            return 0
        held = self._held(context) if context.position_target else None
        return self._told.holds_ahead(context, fast, self.agent, held, int(self.agent.config.min_hold),
                                      interval_ms(context.interval))

    def prime(self, symbol: str, interval: str, frame: Any) -> bool:
        """Seed the pair's live state from its history before its first candle arrives (the
        engine calls it when it adds a pair), so that first candle does not pay the full
        computation (~2-3 ms a pair). False when the history is too short to seed yet."""
        window = self.settings.STATE_WINDOW
        if frame is None or len(frame) < F.warmup_length(window, self.settings) + 1:
            return False
        try:
            self._market_row(symbol, interval, frame, window)
        except ValueError as exc:   # bad history: state_for will say so on the candle; adding the pair must not fail
            log.warning("%s %s: DQN state not seeded from the history (%s)", symbol, interval, exc)
            return False
        return True

    def _held(self, context: StrategyContext) -> int | None:
        """Candles the current position has been held, when the context tells."""
        if "candles_held" in context.extra:
            return int(context.extra["candles_held"])
        p = context.position
        if p is None or not p.opened_ms:
            return None
        arrays = _tail(context)
        times = arrays[0] if arrays is not None else getattr(context.candles.get(context.interval), "index", None)
        if times is None or len(times) < 2:
            return None
        step = max(int(times[-1] - times[-2]), 1)
        return max(int((context.time_ms - p.opened_ms) // step), 0)

    def decide(self, context: StrategyContext) -> Decision:
        told = self._told_state
        if told is not None and context.state is told[0] and _same_candle(context, told[1]):
            # the state `state_for` just built for this candle from a told row (the engine's
            # context carries it): it and the candles held, as they were worked out there (a
            # flat position's: none, and nothing to hold)
            self._told_state = None
            state, held = told[0], told[2]
            holding = self._holding(context, held) if held is not None else None
        else:
            state = self.state_for(context)
            held = self._held(context)
            holding = self._holding(context, held)
        if holding is not None:
            return holding
        fast = self.numpy_pass()
        if fast is not None:
            # a told candle: the state's Q-values batched ahead, the target chosen from them
            # (None: let _choose_row say) and the confidence, if computed for exactly this state
            known = None
            if self._ahead:
                known = self._told.q(context, state, fast, self.agent, (held or 0) if context.position_target else 0)
            if known is not None and known[1] is not None:     # chosen ahead, as _choose_row chooses
                return self._row_decision(*known)
            decision = self._choose_row(context, state, known[0] if known is not None else
                                        fast(state[None])[0].tolist())
            if decision is not None:
                return decision
        return self._choose(context, state, self._q_values(state[None], [context])[0])   # one forward pass

    def _numpy_pass(self) -> NumpyQ | None:
        """The NumPy forward pass of the agent's network while it does not learn (made when
        first needed, remade for a new network), else None: torch decides."""
        agent = self.agent
        fast = self._fast_q
        if fast is None or agent.training:
            return None
        if fast is False or fast.net is not agent.q:
            try:
                fast = self._fast_q = NumpyQ(agent.q)
            except (TypeError, AttributeError):   # another network: torch it is, from now on
                self._fast_q = None
                return None
        return fast  # type: ignore[no-any-return]

    def _position(self, state: np.ndarray) -> tuple[list[float] | None, int, float]:
        """The state's position columns (None without them), the held position's action as
        `sure` takes it (-1: none) and the switch margin it tests."""
        cols = getattr(self.agent, "_position_cols", None)
        if cols is None:
            return None, -1, 0.0
        pos = state[cols].tolist()
        return pos, pos.index(max(pos)), float(getattr(self.agent.config, "switch_margin", 0.0))

    def _q_values(self, states: np.ndarray, contexts: Sequence[StrategyContext]) -> np.ndarray:
        """Q-values of a batch of states: the NumPy pass (`NumpyQ`) while the agent does not learn
        and every greedy choice it gives is clear of float rounding, else the torch network's."""
        if not states.flags.writeable:      # a told row read ahead (read only): torch wants its own
            states = states.copy()
        fast = self._numpy_pass()
        if fast is None:
            return self.agent.q_values(states)
        q = fast(states)
        for row, (ctx, st) in enumerate(zip(contexts, states, strict=True)):
            qr = q[row]
            if not ctx.allow_short and len(qr) > SHORT_ACTION:
                qr = qr.copy()
                qr[SHORT_ACTION] = -np.inf
            _, current, margin = self._position(st)
            if not _sure(qr, min(current, len(qr) - 1), margin):
                return self.agent.q_values(states)
        return q

    def decide_batch(self, contexts: Sequence[StrategyContext]) -> list[Decision]:
        """`decide` for the pairs whose candle closed together: the states of those that may
        change position go through the network in one forward pass (one matrix product for all
        pairs instead of one small one each); the choice per pair (hysteresis, shorts masked,
        exploration in the pairs' order) is `decide`'s."""
        states = [self.state_for(ctx) for ctx in contexts]
        out: list[Decision | None] = [self._holding(ctx) for ctx in contexts]
        ask = [i for i, d in enumerate(out) if d is None]
        if ask:
            q_all = self._q_values(np.stack([states[i] for i in ask]), [contexts[i] for i in ask])
            for row, i in enumerate(ask):
                out[i] = self._choose(contexts[i], states[i], q_all[row])
        return [d for d in out if d is not None]

    def _holding(self, context: StrategyContext, held: Any = False) -> Decision | None:
        """Keep the position while it is younger than min_hold (the same action persistence the
        agent was trained with); None when the agent may change it. `held`: `_held`'s answer
        when the caller has it."""
        if held is False:
            held = self._held(context)
        current = context.position_target
        if current != 0 and held is not None and held < self.agent.config.min_hold:
            return Decision(target=current, confidence=50.0, source=self.name,
                            reason=f"holding: {held} of the minimum {self.agent.config.min_hold} candles")
        return None

    def _choose(self, context: StrategyContext, state: np.ndarray, q_all: np.ndarray) -> Decision:
        """The decision from the state's Q-values (the reason and the record reuse them)."""
        q = q_all
        if not context.allow_short and len(q) > SHORT_ACTION:
            q = q.copy()
            q[SHORT_ACTION] = -np.inf
        action = int(self.agent.greedy(q[None], state[None])[0])
        explored = False
        if self.agent.training and self.agent.rng.random() < self.agent.epsilon:
            allowed = len(q) if context.allow_short else min(len(q), SHORT_ACTION)
            action, explored = int(self.agent.rng.integers(0, allowed)), True
        finite = q[np.isfinite(q)]
        p = np.exp(finite - finite.max())
        confidence = float(np.clip(100.0 * p.max() / p.sum(), 0.0, 100.0)) if not explored else 0.0
        target = action_to_target(action)
        why = "exploring (random action)" if explored else (
            f"greedy: Q flat/long/short = {', '.join(f'{x:.3f}' for x in q_all)}")
        return Decision(target=target, confidence=confidence, reason=why, source=self.name,
                        q_values=tuple(float(x) for x in q_all))

    def sure_choice(self, q_all: list[float], state: np.ndarray, allow_short: bool) -> tuple[list[float], int] | None:
        """The greedy action for one state's Q-values from the NumPy pass (shorts masked where
        not allowed, with the agent's switch hysteresis) and the masked Q-values, when the choice
        is clear of float rounding (`sure_row`); None: only torch can say."""
        q = q_all
        if not all(x == x for x in q):
            return None
        if not allow_short and len(q) > SHORT_ACTION:
            q = q.copy()
            q[SHORT_ACTION] = -math.inf
        pos, current, margin = self._position(state)
        if not sure_row(q, min(current, len(q) - 1), margin):
            return None
        return q, self.agent.greedy_row(q, pos)

    def numpy_pass(self) -> NumpyQ | None:
        """The NumPy forward pass of the agent's network while it does not learn, else None."""
        return self._numpy_pass() if hasattr(self.agent, "greedy_row") else None

    def _choose_row(self, context: StrategyContext, state: np.ndarray, q_all: list[float]) -> Decision | None:
        """`_choose` for the NumPy pass's Q-values of one state, on plain floats (its array calls
        cost more than the choice), when the greedy choice is clear of float rounding (`sure_row`);
        None: ask torch. The same decision bit for bit: float32 rounding where `_choose` rounds
        (`f32`), and numpy's own exp for the confidence."""
        sure = self.sure_choice(q_all, state, context.allow_short)
        if sure is None:
            return None
        q, action = sure
        finite = [x for x in q if x > -math.inf]
        top = max(finite)
        p = np.exp(np.array([f32(x - top) for x in finite], np.float32)).tolist()
        total = 0.0
        for x in p:    # numpy's float32 sum of a few values: in order
            total = f32(total + x)
        confidence = min(max(f32(f32(100.0 * max(p)) / total), 0.0), 100.0)
        return self._row_decision(q_all, action_to_target(action), confidence)

    def _row_decision(self, q_all: list[float], target: int, confidence: float) -> Decision:
        """The decision `_choose_row` returns for the chosen target (the reason `_choose` gives)."""
        q = tuple(q_all)
        why = _GREEDY.get(len(q))
        return Decision(target=target, confidence=confidence, source=self.name, q_values=q,
                        reason=why % q if why is not None else
                        f"greedy: Q flat/long/short = {', '.join(f'{x:.3f}' for x in q)}")

    # -- learning -------------------------------------------------------------------------------
    def observe(self, state: np.ndarray, target: int, reward: float, next_state: np.ndarray, done: bool = False,
                *, symbol: str = "", time_ms: int = 0) -> None:
        """Remember one step of live experience; `target` is the position taken (-1, 0, +1)."""
        action = target_to_action(target)
        if not 0 <= action < self.agent.n_actions:
            raise StrategyError(f"target {target!r} is not a position this agent can take "
                                f"({'flat, long, short' if self.agent.n_actions == 3 else 'flat, long: no shorts'})")
        self.agent.observe(state, action, reward, next_state, done, symbol=symbol, time_ms=time_ms)

    def learn(self) -> float | None:
        """One gradient step when training is on; returns the loss (None when nothing was learned)."""
        if not self.agent.training:
            return None
        return self.agent.learn()

    def save(self, path: str | Path | None = None) -> Path:
        self.model_path = self.agent.save(path)
        return self.model_path

    def load(self, path: str | Path | None = None) -> Path:
        self.model_path = self.agent.load(path)
        return self.model_path
