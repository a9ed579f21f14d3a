"""The DQN strategy's numbers for candles a backtest told it in advance (`KnowsCandles`).

On the engine path of a backtest (`bot.research.backtest.engine_backtest`) the strategy is told
a symbol's candles before the run. Everything its state needs from the candles alone is then
worked out in one pass instead of candle by candle (`ToldCandles` keeps what was told):

- `StreamAhead`: once a pair's feature stream is seeded (as without being told, from the
  history), it is carried over the told candles after the seed point in one pass, keeping every
  row (float32, made finite as `_PairStream.set_row` makes it). A candle of the run reads its row
  by position, after checking that the candles the engine actually holds are the told ones (else
  the strategy goes back to the ordinary stream, as it stands after the last candle read: the
  same numbers it would have had).
- `QAhead`: the Q-values of states to come, in batched NumPy passes (`NumpyQ`), and the choice
  from each (`choices`: `_choose_row`'s target and confidence, in array operations): every flat
  state (its position features are constants), and, for a held position, the next states while
  it is kept (the position features follow from the entry price, the told closes and the candles
  held). A cached row stands for a state only when the state is bit for bit the one it was
  computed for, and only while the agent does not learn (`DQNStrategy.numpy_pass`) and its
  weights are the ones it was computed with (`weights_stamp`). A batched pass differs from a
  one-row pass in the last float32 bits (over all 20,000 hourly seed candles: at most 1.3e-5 on
  Q-values up to 23, under 1 % of the tolerance of `sure_row`, 1e-4 x (1 + |best|)), and
  `sure_row` sends any choice that close to torch: the decisions (targets, hence trades) are
  exactly the ones made without being told. `Decision.q_values`, the confidence and the reason's 3-decimal print of the Q-values may
  differ from the one-row pass's by that much.

The stream's rows ahead come from `bot.analysis.feature_replay.replay_rows` (a compiled pass,
each row bit for bit `FeatureStream.update`'s), run on a copy of the seeded stream: the stream
itself stays at its seed, to be stepped on only if the ordinary path takes over (`park`).

A flat position's state is the row read ahead itself, read only (no copy; the flat lookup
knows it is the batch's row), and `DQNStrategy.decide` on the engine's context, which carries
the state `state_for` just built, takes it and the candles held from there.

From the choices batched ahead the strategy also says, after keeping its position, on how
many told candles it keeps it again (`ToldCandles.holds_ahead`, `HoldsAhead`): the engine then
does not ask it there (bot/engine/coast.py).

What it saves (bench/engine_parts.py, hourly BTC 2018-07..2019-10, us per fed candle): the
whole engine-path candle 63 -> ~32 with the rows and Q-values read ahead, -> ~15 with the
stretches (asked on 574 of 10,968 candles; docs/engine.md, "Engine path speed").
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from bot.agent.environment import ACTION_TARGETS, SHORT_ACTION
from bot.agent.numpy_q import _clip, sure_rows
from bot.analysis import features as F
from bot.analysis.feature_replay import replay_rows

__all__ = ["ToldCandles", "KnownRun", "StreamAhead", "QAhead", "weights_stamp", "choices"]

_max = np.maximum.reduce    # ndarray.max without its Python wrapper
# the positions of high, low, close, volume in CANDLE_COLUMNS (the engine's arrays)
_HIGH, _LOW, _CLOSE, _VOLUME = 1, 2, 3, 4
# Rows per NumPy pass: 64 cost ~1.4 us each (one alone ~12 us); OpenBLAS splits larger products
# over threads, which on a busy machine costs 20-50x what it saves.
Q_ROWS = 64
FLAT_CHUNK = Q_ROWS   # flat states whose Q-values and choices are computed together (one pass)
HELD_AHEAD = 64       # states of a held position computed ahead together


class KnownRun:
    """The candles a backtest told the strategy for one symbol: open times, the candles' values
    (CANDLE_COLUMNS order) as an array and as one flat list of floats (row after row: one list
    for the garbage collector to walk, not one a candle), and where each open time is. `bytes`:
    the open times' and the values' bytes (int64, float64), to compare a few candles at once,
    when every value is finite (a NaN equals itself in bytes, not as a float); else None."""

    def __init__(self, times: np.ndarray, values: np.ndarray) -> None:
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        t = np.asarray(times, dtype=np.int64)
        self.times: list[int] = t.tolist()
        self.width = self.values.shape[1]
        self.flat: list[float] = self.values.ravel().tolist()
        self.index = {ms: i for i, ms in enumerate(self.times)}
        self.bytes = (t.tobytes(), self.values.tobytes()) if np.isfinite(self.values).all() else None

    def holds(self, times: np.ndarray, vals: np.ndarray, first: int, last: int) -> bool:
        """Whether `times`, `vals` (the engine's open times and values, int64 and float64) are
        told candles `first` to `last`, value for value (as floats compare: a NaN never does)."""
        b = self.bytes
        if b is not None:
            tb, vb = b
            row = 8 * self.width
            return times.tobytes() == tb[8 * first:8 * last + 8] and vals.tobytes() == vb[row * first:row * last + row]
        w = self.width
        return times.tolist() == self.times[first:last + 1] and \
            vals.ravel().tolist() == self.flat[first * w:(last + 1) * w]

    def row(self, k: int) -> list[float]:
        """Candle k's values."""
        w = self.width
        return self.flat[k * w:(k + 1) * w]


class ToldCandles:
    """What a `DQNStrategy` was told (`known_candles`): the candles per symbol, and the pairs whose
    stream is read ahead over them. `streams` is the strategy's own dict of ordinary streams
    (`_PairStream` per (symbol, interval)): a pair's stream moves from there into its
    `StreamAhead` when it is carried ahead, and back (`park`) when the candles differ or the run
    is over, as the ordinary path would hold it then."""

    def __init__(self, streams: dict[tuple[str, str], Any], *, catch_up: int, cols: list[int]) -> None:
        self.streams, self.catch_up, self.cols = streams, catch_up, cols
        self.runs: dict[str, KnownRun] = {}
        self.ahead: dict[tuple[str, str], StreamAhead] = {}

    def tell(self, symbol: str, times: np.ndarray, values: np.ndarray) -> None:
        """The candles of `symbol` a run will feed; none: the run is over, forget them."""
        for key in [k for k in self.ahead if k[0] == symbol]:
            self.streams[key] = self.ahead.pop(key).park()
        if not len(times):
            self.runs.pop(symbol, None)
            return
        self.runs[symbol] = KnownRun(times, values)
        for key in [k for k in self.streams if k[0] == symbol]:
            self.look_ahead(key)

    def look_ahead(self, key: tuple[str, str]) -> None:
        """Carry the pair's seeded stream over the told candles after its last one, when that
        candle is one of them (the same open time and values) and the stream reads the engine's
        arrays (CANDLE_COLUMNS order)."""
        run, ps = self.runs.get(key[0]), self.streams.get(key)
        if run is None or ps is None or ps.cols != self.cols:
            return
        k = run.index.get(ps.last_ms)
        if k is None or k + 1 >= len(run.times) or ps.pick(run.row(k)) != ps.last:
            return
        ahead = StreamAhead(ps, run, k, catch_up=self.catch_up)
        if ahead.end > k:
            self.ahead[key] = ahead
            del self.streams[key]

    def state(self, key: tuple[str, str], arrays: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | None:
        """The flat state of the pair's newest candle read ahead (`StreamAhead.row`, read only),
        or None: not read ahead, or (then the ordinary stream takes over) not the
        told candles."""
        ahead = self.ahead.get(key)
        if ahead is None:
            return None
        flat = ahead.row(*arrays) if arrays is not None else None
        if flat is None:
            self.streams[key] = self.ahead.pop(key).park()
        return flat

    def q(self, context: Any, state: np.ndarray, fast: Any, agent: Any,
          held: int) -> tuple[list[float], int | None, float] | None:
        """`QAhead.lookup` for the pair's newest candle read ahead, the cache remade when the
        weights changed (`weights_stamp`); None when no candle of the pair was read ahead."""
        ahead = self.ahead.get((context.symbol, context.interval))
        if ahead is None or ahead.states32 is None:     # (the seed's candle: nothing read ahead yet)
            return None
        qa, stamp = ahead.q, weights_stamp(fast, agent)
        if qa is None or qa.stamp != stamp:
            qa = ahead.q = QAhead(ahead, stamp, agent, context.allow_short)
        return qa.lookup(state, context, held)

    def holds_ahead(self, context: Any, fast: Any, agent: Any, held: int | None, min_hold: int,
                    step_ms: int) -> int:
        """On how many of the told candles after `context`'s (the pair's newest candle read, on
        which the position was just kept) the agent would keep it again, the position staying
        as it is (`HoldsAhead`): the candles a held position must still be kept (`min_hold`),
        then those whose cached choice (`QAhead`) is the position kept, up to the first that is
        not, or is not clear of rounding, or was not computed for this very position. Only
        candles a later `state_for` reads in one catch-up (`catch_up`) and the stream reached.
        0 whenever unsure. `held`: the candles the position has been held (None: flat, or not known)."""
        ahead = self.ahead.get((context.symbol, context.interval))
        if ahead is None or ahead.states32 is None or ahead.run.times[ahead.served] + step_ms != context.time_ms:
            return 0
        pos, r = context.position_target, ahead.served - ahead.start
        last = min(ahead.end - ahead.start, r + self.catch_up - 1)   # the last row a stretch may reach
        if pos != 0 and held is None:
            return 0
        if pos != 0 and held is not None and held < min_hold:   # kept while young: no Q-values asked
            return min(min_hold - held - 1, last - r)
        qa = ahead.q
        if qa is None or qa.stamp != weights_stamp(fast, agent) or context.allow_short != qa.allow_short:
            return 0
        if pos == 0:
            if context.state is not ahead.view:      # not the row read for this candle
                return 0
            j = r + 1
            while j <= last:
                c = j // FLAT_CHUNK
                batch = qa.flat_batch(c)
                n = _kept(batch.targets, j - c * FLAT_CHUNK, last - c * FLAT_CHUNK, 0)
                j += n
                if j <= last and j < (c + 1) * FLAT_CHUNK:    # a row that is not kept: the stretch ends
                    break
            return j - r - 1
        cached = qa.held
        if cached is None:
            return 0
        r0, batch = cached
        i = r - r0
        if not 0 <= i < len(batch.targets) or batch.states[i].tobytes() != context.state.tobytes():
            return 0                  # the cached states are not this position's
        return _kept(batch.targets, i + 1, last - r0, pos)


def _kept(targets: list[int | None], first: int, last: int, target: int) -> int:
    """How many of `targets[first:last + 1]` (cut to the list) are `target`, from `first` on."""
    stop = min(last + 1, len(targets))
    k = first
    while k < stop and targets[k] == target:
        k += 1
    return max(k - first, 0)


class _LateStream:
    """Stands for a pair's `FeatureStream` as it was after the last candle read ahead; made (the
    seed stream stepped over the candles read) when first used, then it replaces itself in its
    `_PairStream`. The ordinary path often never uses it (a new run reseeds the stream)."""

    def __init__(self, ps: Any, seed: Any, candles: list[list[float]]) -> None:
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
    after each told candle from the seed's on, read back by position (`row`), all made in one
    pass when the first told candle after the seed is read. Stops before a candle the stream
    would not step over (a gap: another spacing than the stream's; a close that is not
    positive), where the ordinary path reseeds."""

    def __init__(self, ps: Any, run: KnownRun, start: int, *, catch_up: int) -> None:
        self.ps, self.run, self.start = ps, run, start   # ps: the seeded _PairStream, left as it is
        self.catch_up = catch_up   # candles the ordinary stream steps over at once (dqn.MAX_CATCH_UP)
        t = run.times
        end = len(t) - 1
        step = ps.step
        closes = run.values[:, _CLOSE].tolist()
        for k in range(start + 1, len(t)):
            if (step and t[k] - t[k - 1] != step) or not closes[k] > 0:
                end = k - 1
                break
        self.end = end
        self.served = start       # the last candle read (the seed's at first)
        self.m = len(ps.row32)
        self.states32: np.ndarray | None = None    # made when the next candle is read (`_replay`)
        self.view: np.ndarray | None = None        # the last row read (`row`): a read-only view
        self.q: QAhead | None = None

    def _replay(self) -> np.ndarray:
        """Each candle's flat state from the seed's to `end`: its market row (float32, as set_row
        casts, then NaN and inf made finite as it does) and the flat position's 1, 0, 0, 0, 0."""
        ps, start, m = self.ps, self.start, self.m
        if isinstance(ps.stream, _LateStream):
            ps.stream.real()
        v = self.run.values[start + 1:self.end + 1]
        rows = replay_rows(copy.deepcopy(ps.stream), v[:, _HIGH], v[:, _LOW], v[:, _CLOSE], v[:, _VOLUME])
        market = np.empty((self.end - start + 1, m), dtype=np.float32)
        market[0] = ps.row32
        market[1:] = rows
        np.nan_to_num(market, copy=False)
        out = F.state_vector(market, 0)     # the flat position's features after each row
        out.flags.writeable = False     # a row handed out as a state stays the row (`row`)
        self.states32 = out
        return out

    def row(self, times: np.ndarray, vals: np.ndarray) -> np.ndarray | None:
        """The flat state of the engine's newest candle (`times`, `vals`: its tail; the first `m`
        values are its market row; a read-only view of the rows read ahead), when that candle and every one since
        the last read are the told ones and the stream reached it; else None (the ordinary path
        takes over: `park`)."""
        run = self.run
        j = run.index.get(int(times[-1]))
        served = self.served
        if j is None or j > self.end:
            return None
        d = j - served
        if d < 0 or d > self.catch_up or len(times) <= d:
            return None
        if not run.holds(times[-d - 1:], vals[-d - 1:], served, j):
            return None
        self.served = j
        states = self.states32 if self.states32 is not None else self._replay()
        self.view = states[j - self.start]
        return self.view

    def park(self) -> Any:
        """The pair's `_PairStream` as the ordinary path would hold it after the last candle read:
        its row and last candle set, its stream made only when first used (`_LateStream`)."""
        ps, run, served = self.ps, self.run, self.served
        if served > self.start and self.states32 is not None:
            rows = run.values[self.start + 1:served + 1, [_HIGH, _LOW, _CLOSE, _VOLUME]].tolist()
            ps.stream = _LateStream(ps, ps.stream, rows)
            ps.last_ms = run.times[served]
            ps.last = ps.pick(run.row(served))
            ps.row32 = self.states32[served - self.start, :self.m].copy()
        self.start = self.end = -1      # used up
        return ps


def weights_stamp(fast: Any, agent: Any) -> tuple[Any, ...]:
    """What tells that the network's weights changed since Q-values were cached: the forward
    pass, the learner's step count and the in-place versions of the first and last tensors (a
    load or a learning step moves the last layer, `fit_normalisation` the first buffer)."""
    t = fast.tensors
    return fast, getattr(agent, "gradient_steps", None), t[0]._version, t[-1]._version


class _Batch:
    """States computed ahead together: each state (float32), its Q-values (plain floats) and
    the choice `DQNStrategy._choose_row` makes from them (`choices`: target, confidence)."""

    def __init__(self, states: np.ndarray, q: np.ndarray, choice: tuple[list[int | None], list[float]]) -> None:
        self.states, self.q = states, q.tolist()
        self.targets, self.confidences = choice


class QAhead:
    """Q-values of one pair's states to come, batched: each flat state's (in chunks of
    FLAT_CHUNK, as they are needed) and a held position's next HELD_AHEAD states, with the
    choice from each (for the `allow_short` of the first state asked). Each cached row keeps the
    exact state it was computed for; `lookup` answers only for that state."""

    def __init__(self, ahead: StreamAhead, stamp: tuple[Any, ...], agent: Any, allow_short: bool) -> None:
        self.ahead, self.stamp, self.agent, self.allow_short = ahead, stamp, agent, allow_short
        self.m = ahead.m
        self.flat: dict[int, _Batch] = {}     # chunk -> its flat states
        self.held: tuple[int, _Batch] | None = None   # (first row, the held position's states from there)
        self.unpredicted = -1     # no held prediction is tried again before this row (one just failed)
        self.hits = self.misses = 0

    def lookup(self, state: np.ndarray, context: Any, held: int) -> tuple[list[float], int | None, float] | None:
        """For `state`, the state of the last candle read: its cached Q-values, the target they
        choose (None: not clear of rounding, or shorts allowed otherwise than cached) and the
        confidence; None when no cached row was computed for exactly this state (the caller
        runs the one-row pass)."""
        ahead = self.ahead
        r = ahead.served - ahead.start
        if state[self.m] == 1.0:     # flat: one-hot (1, 0, 0), then 0, 0
            c = r // FLAT_CHUNK
            batch = self.flat_batch(c)
            i = r % FLAT_CHUNK
            # (the row read itself, read only, is the batch's row: a view of the same array)
            if state is not ahead.view and batch.states[i].tobytes() != state.tobytes():
                self.misses += 1
                return None
        else:
            cached = self.held
            i = -1 if cached is None else r - cached[0]
            if cached is None or not 0 <= i < len(cached[1].q) or \
                    cached[1].states[i].tobytes() != state.tobytes():
                self.misses += 1
                # (a new prediction starts from `state` itself: `_held_ahead` checks that)
                got = self._held_ahead(state, context, held, r) if r >= self.unpredicted else None
                if got is None:
                    return None
                cached, i = (r, got), 0
            batch = cached[1]
        self.hits += 1
        target = batch.targets[i] if context.allow_short == self.allow_short else None
        return batch.q[i], target, batch.confidences[i]

    def _batch(self, states: np.ndarray) -> _Batch:
        fast, n = self.stamp[0], len(states)
        q = np.concatenate([fast(states[i:i + Q_ROWS]) for i in range(0, n, Q_ROWS)]) if n > Q_ROWS else fast(states)
        return _Batch(states, q, choices(self.agent, states, q, self.allow_short))

    def flat_batch(self, c: int) -> _Batch:
        """Flat chunk `c`'s states, Q-values and choices, computed when first asked for."""
        batch = self.flat.get(c)
        if batch is None:
            batch = self.flat[c] = self._batch(self.ahead.states32[c * FLAT_CHUNK:(c + 1) * FLAT_CHUNK])
        return batch

    def _held_ahead(self, state: np.ndarray, context: Any, held: int, r: int) -> _Batch | None:
        """The next HELD_AHEAD states of the held position, if it is kept (candle after candle:
        the told closes, one more candle held each), built as `DQNStrategy.state_for` builds a
        state, and their Q-values in one pass; cached (and returned) only when the first is
        `state` itself."""
        pos, p = context.position_target, context.position
        if pos == 0 or p is None or held < 0:
            return None
        ahead = self.ahead
        rows = ahead.states32[r:r + HELD_AHEAD, :self.m]
        n = len(rows)
        j = ahead.start + r
        closes = ahead.run.values[j:j + n, _CLOSE]
        entry = p.entry_price
        upnl = pos * (closes / entry - 1.0) * 100.0 if entry > 0 else np.zeros(n)
        states = F.state_vector(rows, pos, upnl, np.arange(held, held + n))
        if states[0].tobytes() != state.tobytes():   # not the state the prediction starts from (a
            self.unpredicted = r + n                    # context that tells the candles held): none
            return None                                 # cached, and no new try for a while
        batch = self._batch(states)
        self.held = (r, batch)
        return batch


def choices(agent: Any, states: np.ndarray, q: np.ndarray, allow_short: bool) -> tuple[list[int | None], list[float]]:
    """For each row of Q-values (float32, of `states`): the target of the action
    `DQNStrategy._choose_row` takes (shorts masked where not allowed, the switch hysteresis),
    None where it is not clear of float rounding (`sure_rows`, as `sure_choice` asks `sure_row`),
    and its confidence; in array operations. `_choose_row` is the reference
    (self_test/strategies/test_dqn_known.py)."""
    qm = np.array(q, dtype=np.float32)
    n_actions = qm.shape[1]
    if not allow_short and n_actions > SHORT_ACTION:
        qm[:, SHORT_ACTION] = -np.inf
    cols = getattr(agent, "_position_cols", None)
    if cols is None:
        current, margin = np.full(len(qm), -1), 0.0
    else:
        current = np.minimum(states[:, cols].argmax(axis=1), n_actions - 1)
        margin = float(getattr(agent.config, "switch_margin", 0.0))
    sure = sure_rows(qm, current, margin).tolist()
    actions = agent.greedy(qm, states)
    with np.errstate(invalid="ignore"):      # a NaN row: not sure, its confidence unused
        p = np.exp(qm - _max(qm, axis=1, keepdims=True))   # float32; a masked action's 0 adds nothing
        total = p[:, 0] + p[:, 1]
        for k in range(2, n_actions):       # the float32 sum in order, as _choose_row adds
            total += p[:, k]
        confidence = np.float32(100.0) * _max(p, axis=1)
        np.divide(confidence, total, out=confidence)
        _clip(confidence, 0.0, 100.0, out=confidence)
    targets = ACTION_TARGETS[actions].tolist()
    return [t if ok else None for t, ok in zip(targets, sure, strict=True)], confidence.tolist()
