"""The step's part for candles a backtest tells it in advance (`CandleStep` is a `ToldStep`).

A backtest has all its candles before the first one is fed, so `engine_backtest`
(bot/research/backtest.py) tells the step (`known_candles`). Then:

- the pair's indicators are carried ahead over them in one pass when its stream is seeded
  (`IndicatorReplay`, made by the step's `_new_stream`), and a strategy that `KnowsCandles` is
  told them too;
- the warm-up candles (fed while the engine is paused) are taken in at once (`take_history`);
- a strategy that `HoldsAhead` says, after keeping its position, on how many told candles it
  keeps it again: the step does not ask it there (`_start_coast`, `_coasting`; bot/engine/coast.py),
  and the backtester takes such a stretch in at once while nothing can trigger on the paper
  exchange (`coast_told`).

Values, trades and everything else are those of candle-by-candle feeding (self_test/engine/
test_state.py, test_coast.py). Paper and live trading are never told their candles. The step's
own state and parts are used here as they are there (the attributes declared below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from bot.engine.coast import Coast
from bot.engine.state import IndicatorReplay, PairState
from bot.errors import BotError
from bot.strategies.base import Decision, KnowsCandles, StrategyContext
from bot.types import Balance, Candle, Fill, Position, interval_ms

if TYPE_CHECKING:
    from bot.engine.components import Components
    from bot.engine.engine_state import EngineState
    from bot.strategies.base import LearningStrategy

__all__ = ["ToldStep"]


class ToldStep:
    """`CandleStep`'s methods for told candles (see the module's docstring)."""

    # the step's own, set by CandleStep.__init__
    parts: Components
    state: EngineState
    learner: LearningStrategy | None
    _known: dict[str, tuple[np.ndarray, np.ndarray]]   # symbol -> candles to come
    _coasts: dict[str, Coast]                          # symbol -> the stretch it is in
    _holds_ahead: Callable[[StrategyContext, Decision], int] | None
    _marks: Callable[[Candle], list[Fill]]
    _get_balance: Callable[[], Balance]

    def process_candle(self, candle: Candle) -> None:
        raise NotImplementedError   # the step's

    def _positions_of(self, symbol: str) -> list[Position]:
        raise NotImplementedError   # the step's

    def _check_limits(self, equity: float, close_ms: int, symbol: str) -> None:
        raise NotImplementedError   # the step's

    def report_error(self, exc: BaseException, context: str) -> None:
        raise NotImplementedError   # the step's

    def known_candles(self, symbol: str, times: np.ndarray, values: np.ndarray) -> None:
        """The candles this step will be fed for `symbol`, in order (a backtest's; `values` in
        CANDLE_COLUMNS order): the pair's indicators are carried ahead over them in one pass when
        its stream is seeded (`IndicatorReplay`), instead of candle by candle, and a strategy that
        `KnowsCandles` is told them too; one that `HoldsAhead` is not asked on the told candles it
        says it keeps its position through (`_start_coast`, `coast_told`). Values, trades and
        everything else are the same (tested).
        No candles: forget them (the backtester's call when its run is over)."""
        known = (np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64))
        self._coasts.pop(symbol, None)
        if len(known[0]):
            self._known[symbol] = known
        else:                 # none: the run is over, forget them
            self._known.pop(symbol, None)
        strategy = self.parts.strategy
        if isinstance(strategy, KnowsCandles):   # its own candle-only numbers too (same decisions)
            strategy.known_candles(symbol, *known)

    def take_history(self, symbol: str, interval: str, times: np.ndarray, values: np.ndarray) -> None:
        """Candles fed while the engine is paused (a backtest's warm-up: nothing is decided on
        them), taken in as `process_candle` would take them one by one, but in one go once the
        pair's indicators are seeded: the tail grows by all of them, the indicators step over
        them, the exchange sees the last one. Only while nothing is open on `symbol` (then a
        candle can trigger nothing and leaves the account as it was); else, or before the
        indicators are seeded, candle by candle. Same state afterwards (tested)."""
        if not self.state.paused.is_set():
            raise RuntimeError("take_history is for candles fed while the engine is paused")
        def candle(k: int) -> Candle:
            return Candle(symbol, interval, int(times[k]), *values[k].tolist())

        n, i = len(times), 0
        ps = self.state.pairs.get(symbol)
        while i < n and (ps is None or ps.stream is None or self._positions_of(symbol)):
            self.process_candle(candle(i))
            ps, i = self.state.pairs.get(symbol), i + 1
        if i == n or ps is None or ps.stream is None:
            return
        try:
            self._take_at_once(ps, times[i:], values[i:], values[i:, 3].tolist())
        except LookupError:   # not the candles the indicators were carried over: one by one
            for k in range(i, n):
                self.process_candle(candle(k))
            return
        last = candle(n - 1)
        self._marks(last)        # nothing open: the price, and the account as it was
        self._check_limits(self._get_balance().equity, last.close_ms, symbol)

    def _take_at_once(self, ps: PairState, times: np.ndarray, values: np.ndarray, closes: list[float]) -> None:
        """`_take`'s history, indicators, regime and counters for several candles of a pair at once
        (newer than its last, in order; `closes` their closes), when its indicators were carried
        over them (`IndicatorReplay`); LookupError (and nothing changed) when they were not. The
        exchange's part is the caller's."""
        stream = ps.stream
        if not isinstance(stream, IndicatorReplay) or int(times[0]) <= ps.last_ms or \
                not bool(np.all(times[1:] > times[:-1])):
            raise LookupError("a live stream, or candles out of order")
        stream.advance(closes)
        ps.extend(times, values)
        ps.regime = stream.regime()
        st, last_ms = self.state, int(times[-1])
        st.candles_processed += len(times)
        st.last_prices[ps.symbol] = closes[-1]
        st.last_candle_ms = max(st.last_candle_ms, last_ms)
        st.last_close_ms = max(st.last_close_ms, last_ms + interval_ms(ps.interval))

    def coast_told(self, symbol: str, first: int, limit: int) -> list[float]:
        """The told candles from position `first` of `known_candles` on, before `limit`, taken in
        at once while the strategy keeps its position through them (a stretch,
        bot/engine/coast.py) and nothing can trigger on the paper exchange (`quiet_candles`):
        each as `process_candle` takes a candle of a stretch (history, indicators, the
        exchange's marks, the account limits at each close, the candles held), the same state
        after. Returns the account's equity after each candle taken; none taken (empty): feed
        candle `first` as usual. The backtester's loop (`engine_backtest`)."""
        coast = self._coasts.get(symbol)
        ps = self.state.pairs.get(symbol)
        known = self._known.get(symbol)
        if coast is None or coast.next != first or ps is None or known is None:
            return []
        times, values = known
        stop = min(coast.stop, limit)
        k = self.parts.broker.quiet_candles(symbol, values[first:stop]) if stop - first > 1 else 0
        if k < 2:            # one candle: the stretch's own step costs less
            return []
        t, v = times[first:first + k], values[first:first + k]
        closes = v[:, 3].tolist()
        try:
            self._take_at_once(ps, t, v, closes)
        except LookupError:
            return []
        close_ms = (t + interval_ms(ps.interval)).tolist()
        equities = self.parts.broker.mark_quiet(symbol, close_ms, closes)
        for eq, ms in zip(equities, close_ms, strict=True):
            self._check_limits(eq, ms, symbol)
        if coast.held:
            ps.held_candles += k
        coast.next = first + k
        if not coast:
            del self._coasts[symbol]
        return equities

    def _coasting(self, ps: PairState, candle: Candle, balance: Balance) -> bool:
        """A told candle the strategy already said it keeps its position on (bot/engine/coast.py):
        what `_context` does for it but the context (the account limits, the candles held), no
        decision asked. False (and the stretch over) for any other candle."""
        coast = self._coasts.get(candle.symbol)
        if coast is None:
            return False
        if not coast.takes(candle):
            del self._coasts[candle.symbol]
            return False
        if not coast:
            del self._coasts[candle.symbol]   # the last of the stretch: the next one is asked again
        self._check_limits(balance.equity, candle.close_ms, candle.symbol)
        if coast.held:
            ps.held_candles += 1
        return True

    def _start_coast(self, candle: Candle, ctx: StrategyContext, decision: Decision) -> None:
        """After a decision to keep the position on a told candle: the told candles after it on
        which the strategy says it keeps it too (`HoldsAhead`), taken without asking it. Not
        while the strategy learns online (it learns from every candle's context)."""
        known = self._known.get(candle.symbol)
        if known is None or self._holds_ahead is None or (self.learner is not None and self.state.training):
            return
        times = known[0]
        j = int(times.searchsorted(candle.open_ms))
        if j >= len(times) or int(times[j]) != candle.open_ms:
            return
        try:
            k = min(int(self._holds_ahead(ctx, decision)), len(times) - 1 - j)
        except BotError as exc:
            self.report_error(exc, f"{candle.symbol}: strategy {self.parts.strategy.name}")
            return
        if k > 0:
            self._coasts[candle.symbol] = Coast(*known, j + 1, j + 1 + k, held=ctx.position is not None)
