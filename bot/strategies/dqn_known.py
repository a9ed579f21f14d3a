"""The DQN strategy's numbers for candles a backtest told it in advance (`KnowsCandles`).

On the engine path of a backtest (`bot.research.backtest.engine_backtest`) the strategy is told
a symbol's candles before the run. Everything its state needs from the candles alone is then
worked out in one pass instead of candle by candle:

- `StreamAhead`: once a pair's feature stream is seeded (as without being told, from the
  history), it is carried over the told candles after the seed point in one pass, keeping every
  row (float32, made finite as `_PairStream.set_row` makes it). A candle of the run reads its row
  by position, after checking that the candles the engine actually holds are the told ones (else
  the strategy goes back to the ordinary stream, as it stands after the last candle read: the
  same numbers it would have had).
- `QAhead`: the Q-values of states to come, in one batched NumPy pass (`NumpyQ`): every flat
  state (its position features are constants), and, for a held position, the next states while
  it is kept (the position features follow from the entry price, the told closes and the candles
  held). A cached Q-value stands for a state only when the state is bit for bit the one it was
  computed for; a batched pass differs from a one-row pass by a few 1e-6, far inside the 1e-4
  tolerance of `sure_row`, which sends any choice that close to torch, so the decisions (targets,
  hence trades) are exactly the ones made without being told. `Decision.q_values` (and the
  reason's 3-decimal print of them) may differ from the one-row values by that much.

The stream's rows ahead come from `bot.analysis.feature_replay.replay_rows` (a compiled pass,
each row bit for bit `FeatureStream.update`'s), run on a copy of the seeded stream: the stream
itself stays at its seed, to be stepped on only if the ordinary path takes over (`park`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from bot.analysis import features as F
from bot.analysis.feature_replay import replay_rows

__all__ = ["KnownRun", "StreamAhead", "QAhead", "weights_stamp"]

# the positions of high, low, close, volume in CANDLE_COLUMNS (the engine's arrays)
_HIGH, _LOW, _CLOSE, _VOLUME = 1, 2, 3, 4
# States per batched pass. 64 rows cost ~1.4 us each (~15 us alone); OpenBLAS splits larger
# products over threads, which on a busy machine costs 20-50x what it saves.
FLAT_CHUNK = 64       # flat states whose Q-values one batched pass computes
HELD_AHEAD = 64       # states of a held position computed ahead in one batched pass


class KnownRun:
    """The candles a backtest told the strategy for one symbol: open times, each candle's values
    (CANDLE_COLUMNS order) as plain lists, and where each open time is."""

    def __init__(self, times: np.ndarray, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.times: list[int] = np.asarray(times, dtype=np.int64).tolist()
        self.rows: list[list[float]] = self.values.tolist()
        self.index = {ms: i for i, ms in enumerate(self.times)}


class _LateStream:
    """Stands for a pair's `FeatureStream` as it was after the last candle read ahead; made (the
    seed stream stepped over the candles read) when first used, then it replaces itself in its
    `_PairStream`. The ordinary path often never uses it (a new run reseeds the stream)."""

    def __init__(self, ps: Any, seed: Any, candles: list[tuple[float, float, float, float]]) -> None:
        self._ps, self._seed, self._candles = ps, seed, candles

    def real(self) -> Any:
        """The stream itself, stepped over the candles read; it replaces this stand-in."""
        stream, candles = self._seed, self._candles
        if candles:
            self._candles = []
            for h, lo, c, v in candles:
                stream.update(h, lo, c, v)
        self._ps.stream = stream
        return stream

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):       # copy's and pickle's probes: not a use of the stream
            raise AttributeError(name)
        return getattr(self.real(), name)


class StreamAhead:
    """One pair's feature stream carried ahead over its told candles: the stream's float32 row
    after each told candle from the seed's on, read back by position (`row`). Stops before a
    candle the stream would not step over (a gap: another spacing than the stream's; a close that
    is not positive), where the ordinary path reseeds."""

    def __init__(self, ps: Any, run: KnownRun, start: int, *, catch_up: int) -> None:
        if isinstance(ps.stream, _LateStream):
            ps.stream.real()
        self.ps, self.run, self.start = ps, run, start   # ps: the seeded _PairStream, left as it is
        self.catch_up = catch_up   # candles the ordinary stream steps over at once (dqn.MAX_CATCH_UP)
        t = run.times
        end = len(t) - 1
        step = ps.step
        for k in range(start + 1, len(t)):
            c = run.rows[k][_CLOSE]
            if (step and t[k] - t[k - 1] != step) or not c > 0:
                end = k - 1
                break
        v = run.values[start + 1:end + 1]
        rows = replay_rows(copy.deepcopy(ps.stream), v[:, _HIGH], v[:, _LOW], v[:, _CLOSE], v[:, _VOLUME])
        m = len(ps.row32)
        out = np.empty((end - start + 1, m), dtype=np.float32)
        out[0] = ps.row32
        out[1:] = rows            # float32, as set_row casts; then NaN and inf made finite as it does
        np.nan_to_num(out, copy=False)
        self.rows32 = out
        self.end = end
        self.served = start       # the last candle read (the seed's at first)
        self.q: QAhead | None = None

    def row(self, times: np.ndarray, vals: np.ndarray) -> np.ndarray | None:
        """The market row of the engine's newest candle (`times`, `vals`: its tail), when that
        candle and every one since the last read are the told ones and the stream reached it;
        else None (the ordinary path takes over: `park`)."""
        run = self.run
        j = run.index.get(int(times[-1]))
        served = self.served
        if j is None or j > self.end:
            return None
        d = j - served
        if d < 0 or d > self.catch_up or len(times) <= d:
            return None
        if times[-d - 1:].tolist() != run.times[served:j + 1] or vals[-d - 1:].tolist() != run.rows[served:j + 1]:
            return None
        self.served = j
        return self.rows32[j - self.start]  # type: ignore[no-any-return]

    def park(self) -> Any:
        """The pair's `_PairStream` as the ordinary path would hold it after the last candle read:
        its row and last candle set, its stream made only when first used (`_LateStream`)."""
        ps, run, served = self.ps, self.run, self.served
        if served > self.start:
            rows = run.rows[self.start + 1:served + 1]
            ps.stream = _LateStream(ps, ps.stream, [(r[_HIGH], r[_LOW], r[_CLOSE], r[_VOLUME]) for r in rows])
            ps.last_ms = run.times[served]
            ps.last = ps.pick(run.rows[served])
            ps.row32 = self.rows32[served - self.start].copy()
        self.start = self.end = -1      # used up
        return ps


def weights_stamp(fast: Any, agent: Any) -> tuple[Any, ...]:
    """What tells that the network's weights changed since Q-values were cached: the forward
    pass, the learner's step count and the in-place versions of the first and last tensors (a
    load or a learning step moves the last layer, `fit_normalisation` the first buffer)."""
    t = fast.tensors
    return fast, getattr(agent, "gradient_steps", None), t[0]._version, t[-1]._version


class QAhead:
    """Q-values of one pair's states to come, batched: each flat state's (in chunks of
    FLAT_CHUNK, as they are needed) and a held position's next HELD_AHEAD states. Each cached row
    keeps the exact state it was computed for; `q` answers only for that state."""

    def __init__(self, ahead: StreamAhead, stamp: tuple[Any, ...], n_position: int) -> None:
        self.ahead, self.stamp = ahead, stamp
        self.m = ahead.rows32.shape[1]
        self.n_position = n_position
        self.flat: dict[int, tuple[np.ndarray, list[list[float]]]] = {}   # chunk -> (states, Q rows)
        self.held: dict[int, tuple[bytes, list[float]]] = {}            # row -> (state bytes, Q row)
        self.hits = self.misses = 0

    def q(self, state: np.ndarray, context: Any, held: int | None) -> list[float] | None:
        """The cached Q-values of `state`, the state of the last candle read; None when no cached
        row was computed for exactly this state (the caller runs the one-row pass)."""
        ahead = self.ahead
        r = ahead.served - ahead.start
        m = self.m
        if state[m] == 1.0:     # flat: one-hot (1, 0, 0), then 0, 0
            chunk = self.flat.get(r // FLAT_CHUNK)
            if chunk is None:
                chunk = self.flat[r // FLAT_CHUNK] = self._flat_chunk(r // FLAT_CHUNK)
            i = r % FLAT_CHUNK
            if state.tobytes() == chunk[0][i].tobytes():
                self.hits += 1
                return chunk[1][i]
            self.misses += 1
            return None
        got = self.held.get(r)
        if got is not None and got[0] == state.tobytes():
            self.hits += 1
            return got[1]
        self.misses += 1
        self._held_ahead(state, context, held, r)
        got = self.held.get(r)
        return got[1] if got is not None and got[0] == state.tobytes() else None

    def _flat_chunk(self, c: int) -> tuple[np.ndarray, list[list[float]]]:
        rows = self.ahead.rows32[c * FLAT_CHUNK:(c + 1) * FLAT_CHUNK]
        states = np.zeros((len(rows), self.m + self.n_position), dtype=np.float32)
        states[:, :self.m] = rows
        states[:, self.m] = 1.0
        return states, self.stamp[0](states).tolist()

    def _held_ahead(self, state: np.ndarray, context: Any, held: int | None, r: int) -> None:
        """The next HELD_AHEAD states of the held position, if it is kept (candle after candle:
        the told closes, one more candle held each), built as `DQNStrategy.state_for` builds a
        state, and their Q-values in one pass; cached only when the first is `state` itself."""
        pos, p = context.position_target, context.position
        if pos == 0 or p is None or held is None or held < 0:
            return
        ahead = self.ahead
        rows = ahead.rows32[r:r + HELD_AHEAD]
        n, m = len(rows), self.m
        j = ahead.start + r
        closes = ahead.run.values[j:j + n, _CLOSE]
        entry = p.entry_price
        if entry > 0:
            upnl = pos * (closes / entry - 1.0) * 100.0
            upnl = np.where(upnl == upnl, upnl, 0.0)
            feat = np.where(upnl != 0.0, np.tanh(upnl / F.UPNL_SCALE_PCT), upnl)
        else:
            feat = np.zeros(n)
        h = np.arange(held, held + n, dtype=np.float64)
        states = np.empty((n, m + self.n_position), dtype=np.float32)
        states[:, :m] = rows
        states[:, m:m + 3] = (pos == 0, pos == 1, pos == -1)
        states[:, m + 3] = feat
        states[:, m + 4] = h / (h + F.HELD_HALF_LIFE)
        if states[0].tobytes() != state.tobytes():
            return                      # not the state the prediction starts from: nothing cached
        q = self.stamp[0](states).tolist()
        self.held.clear()               # the rows of an earlier prediction are of the past
        for i in range(n):
            self.held[r + i] = (states[i].tobytes(), q[i])
