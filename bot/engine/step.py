"""The per-candle step of the engine, and the manual orders that share its risk checks.

`CandleStep` is the only code that decides and sends orders, so paper, live, backtest and a
person's button all go through the same checks. It is built for one set of parts
(`Components`) and writes the engine's `EngineState`; it runs on whichever thread calls it
(the engine thread, or the backtester's).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bot.engine.candle_frames import CandleFrames
from bot.engine.coast import Coast
from bot.engine.components import Components, durable
from bot.engine.engine_state import UNCLOSED, EngineState
from bot.engine.learning import OnlineLearning
from bot.engine.manual import ManualOrderResult, ManualOrders
from bot.engine.past import read_learner_curve
from bot.engine.recovery import journal_row, protected
from bot.engine.state import TAIL, IndicatorReplay, PairState, StreamingIndicators, TradeMarker
from bot.engine.told import ToldStep
from bot.errors import BotError, InvalidOrderError, OutcomeUnknownError, RiskViolationError
from bot.events import EventBus, EventKind
from bot.exchange.base import round_to_tick
from bot.strategies.base import (
    FLAT,
    LONG,
    SHORT,
    Decision,
    HoldsAhead,
    LearningStrategy,
    StrategyContext,
    WarmsUp,
)
from bot.types import (
    Balance,
    Candle,
    ClosedTrade,
    DataSource,
    Fill,
    Position,
    ms_to_iso,
)

if TYPE_CHECKING:
    from config import Settings

__all__ = ["CandleStep", "ManualOrderResult"]

log = logging.getLogger("bot.engine")

_SIDE = {LONG: "long", SHORT: "short"}


class CandleStep(ToldStep, OnlineLearning, ManualOrders):
    """One closed candle: exchange marks -> indicators and regime -> account limits -> decide ->
    review -> risk -> execute -> round trips -> journal -> events -> learner. A backtest's
    candles told in advance: `ToldStep` (bot/engine/told.py); the agent's online learning:
    `OnlineLearning` (bot/engine/learning.py); a person's orders: `ManualOrders`
    (bot/engine/manual.py).

    `clock`: wall seconds, for a person's orders. The step reads the strategy's capabilities once
    (`LearningStrategy`, `WarmsUp`): they do not change while these parts live."""

    def __init__(self, settings: Settings, parts: Components, state: EngineState, bus: EventBus, *,
                 clock: Callable[[], float]) -> None:
        from bot.agent.reward_system import RewardSystem

        self.settings = settings
        self.parts = parts
        self.state = state
        self.bus = bus
        self.clock = clock
        self.reward = RewardSystem.from_settings(settings)
        strat = parts.strategy
        self.learner: LearningStrategy | None = strat if isinstance(strat, LearningStrategy) else None
        if self.learner is not None:   # a resumed agent: its steps and curves carry over
            steps = int(getattr(self.learner.agent, "gradient_steps", 0) or 0)
            if steps and not state.learner_stats.get("steps"):
                state.learner_stats["steps"] = float(steps)
            if not state.learner_curve:
                state.learner_curve.extend(p for p in read_learner_curve(settings) if p[0] <= max(steps, 0))
        own = int(strat.warmup or 0) if isinstance(strat, WarmsUp) else 0
        need = own
        if self.learner is not None:   # the agent's state needs EMA 200 over STATE_WINDOW candles
            from bot.analysis.features import warmup_length
            need = max(need, warmup_length(settings.STATE_WINDOW, settings) + 1)
        # Candles a pair needs before the strategy is asked.
        self.warmup = max(need, settings.ATR_PERIOD + 2, 52)
        # Candles handed to the strategy: the whole tail for the agent (its slow features read up
        # to 2,000), a few hundred for rule strategies (they keep longer history themselves).
        self.context_candles = TAIL if self.learner is not None else max(500, 4 * own)
        # Candles before the streaming indicators can be seeded (every one of them defined).
        self.stream_min = max(settings.ATR_PERIOD, 2 * settings.ADX_PERIOD, settings.BB_PERIOD) + 1
        self.defer_learning = False      # the loop learns after each batch's orders (flush_learning)
        self._pending_learn = []
        self._allow_short = settings.allows_short
        # the parts' methods every candle calls, looked up once (the parts do not change while the step lives)
        self._get_balance, self._decide, self._marks = parts.exchange.get_balance, strat.decide, parts.broker.on_candle
        self._get_position: Callable[[str], Position | None] | None = getattr(parts.exchange, "get_position", None)
        self._trailing = bool(settings.TRAILING_STOP)   # else no stop is ever trailed (RiskManager.trailing_stop)
        self._known: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # symbol -> candles to come (known_candles)
        # told candles the strategy keeps its position through, per symbol (bot/engine/coast.py);
        # never with trailing stops (a trailed stop reads every candle's context)
        self._coasts: dict[str, Coast] = {}
        self._holds_ahead = strat.holds_ahead if isinstance(strat, HoldsAhead) and not self._trailing else None

    # -- the step ----------------------------------------------------------------------------------
    def process_candle(self, candle: Candle) -> None:
        """Everything one closed candle causes, synchronously, on the calling thread."""
        ps = self._take(candle)
        if ps is None:
            return
        balance = self._get_balance()
        if self._coasts and self._coasting(ps, candle, balance):
            return
        ready = self._context(ps, candle, balance, self._positions_of(candle.symbol))
        if ready is None:
            return
        try:
            decision = self._decide(ready)
        except BotError as exc:
            self.report_error(exc, f"{candle.symbol}: strategy {self.parts.strategy.name}")
            return
        self._finish(ps, ready, decision, balance)
        if self._holds_ahead is not None and decision.target == ready.position_target and self._known:
            self._start_coast(candle, ready, decision)

    def process_batch(self, candles: Sequence[Candle]) -> None:
        """The candles of several pairs that closed together, as `process_candle` would take them
        one after the other, but with the work that does not depend on the other pairs' orders
        done once: the exchange marks every pair first; the account and the positions are read
        once for the batch (not once per pair: the paper exchange builds every position to
        answer); the strategy decides for all pairs at once when it can (`decide_batch`: the
        agent's one forward pass); then each pair's decision goes through review, risk and the
        executor in the batch's order, each entry judged on the account as the orders before it
        left it. Learning waits until the batch's orders are out (`flush_learning`)."""
        took: list[tuple[PairState, Candle]] = []
        for candle in candles:
            try:
                ps = self._take(candle)
            except BotError as exc:
                self.report_error(exc, f"{self.source} {candle.symbol} {ms_to_iso(candle.open_ms)}")
                continue
            if ps is not None:
                took.append((ps, candle))
        if not took:
            return
        balance = self.parts.exchange.get_balance()
        positions = self.parts.exchange.get_positions()
        ready: list[tuple[PairState, StrategyContext]] = []
        for ps, candle in took:
            try:
                ctx = self._context(ps, candle, balance, positions)
            except BotError as exc:
                self.report_error(exc, f"{self.source} {candle.symbol} {ms_to_iso(candle.open_ms)}")
                continue
            if ctx is not None:
                ready.append((ps, ctx))
        decisions = self._decide_all([ctx for _, ctx in ready])
        deferred, self.defer_learning = self.defer_learning, True
        try:
            for (ps, ctx), decision in zip(ready, decisions, strict=True):
                if decision is None:
                    continue
                try:
                    self._finish(ps, ctx, decision, balance)
                except BotError as exc:
                    self.report_error(exc, f"{self.source} {ctx.symbol}")
                if decision.target != ctx.position_target:   # it may have traded: the next pair's
                    balance = self.parts.exchange.get_balance()  # step starts from the account it left
        finally:
            self.defer_learning = deferred
        if not deferred:
            self.flush_learning()

    def _positions_of(self, symbol: str) -> list[Position]:
        """The positions `_context` looks `symbol`'s up in: just that one when the exchange can say
        (the paper exchange: one record instead of every pair's), else all of them."""
        one = self._get_position
        if one is None:
            return self.parts.exchange.get_positions()
        p = one(symbol)
        return [p] if p is not None else []

    def _decide_all(self, contexts: list[StrategyContext]) -> list[Decision | None]:
        """Decisions for contexts of different pairs: the strategy's `decide_batch` when it has
        one, else `decide` for each. A strategy error costs that pair's decision (or, from
        `decide_batch`, the batch's), reported, never the other pairs' exits."""
        strat = self.parts.strategy
        batch = getattr(strat, "decide_batch", None)
        if batch is not None and len(contexts) > 1:
            try:
                return list(batch(contexts))
            except BotError as exc:
                self.report_error(exc, f"strategy {strat.name} (a batch of {len(contexts)} pairs)")
                return [None] * len(contexts)
        out: list[Decision | None] = []
        for ctx in contexts:
            try:
                out.append(strat.decide(ctx))
            except BotError as exc:
                self.report_error(exc, f"{ctx.symbol}: strategy {strat.name}")
                out.append(None)
        return out

    def _take(self, candle: Candle) -> PairState | None:
        """The candle into its pair's history, the exchange's stops, the indicators; None when seen."""
        c, st = self.parts, self.state
        ps = st.pairs.get(candle.symbol)
        if ps is None:
            ps = self.new_pair(candle.symbol, before_ms=candle.open_ms)
        if not ps.append(candle):
            return None  # already seen: a feed may repeat the last candle after a reconnect
        st.candles_processed += 1
        st.last_prices[candle.symbol] = candle.close
        if candle.open_ms > st.last_candle_ms:   # candles of one pair come in time order
            st.last_candle_ms = candle.open_ms
            st.last_close_ms = max(st.last_close_ms, candle.close_ms)
        # 1. the exchange sees the candle first: a stop hit inside it happened before our decision
        for f in self._marks(candle):
            c.journal.record_fill(f, mode=c.exchange.mode)   # the executor did not see this one
            self._book_fill(f)
        # 2. indicators (O(1) per candle) and the regime
        stream = ps.stream
        if stream is None and len(ps) > self.stream_min:
            ps.stream = stream = self._new_stream(ps)
        elif stream is not None:
            try:
                stream.update(candle.high, candle.low, candle.close)
            except LookupError:   # a replay fed another candle than the one it expected: a live stream
                ps.stream = stream = StreamingIndicators(ps.arrays(), self.settings)
        if stream is not None:
            ps.regime = stream.regime()
        return ps

    def _check_limits(self, equity: float, close_ms: int, symbol: str) -> None:
        """The account limits at a candle's close; a limit broken now is a critical event."""
        try:
            self.parts.risk.check_limits(equity, close_ms)
        except RiskViolationError as exc:
            self.bus.emit(EventKind.CRITICAL, f"RISK LIMIT: {exc}", level="ERROR", symbol=symbol)

    def _new_stream(self, ps: PairState) -> StreamingIndicators | IndicatorReplay:
        """The pair's indicators seeded from its tail, carried ahead over its known candles if any."""
        stream = StreamingIndicators(ps.arrays(), self.settings)
        known = self._known.get(ps.symbol)
        if known is None or len(stream.closes) != stream.bb_n:
            return stream
        times, values = known
        k = int(np.searchsorted(times, ps.last_ms, side="right"))
        if k == 0 or int(times[k - 1]) != ps.last_ms:
            return stream          # the tail does not end on a known candle: stay live
        rest = values[k:]
        return IndicatorReplay(stream, rest[:, 3].tolist(), rest[:, 1].tolist(), rest[:, 2].tolist())

    def _context(self, ps: PairState, candle: Candle, balance: Balance,
                 positions: list[Position]) -> StrategyContext | None:
        """3. the account limits, the pair's position and trailing stop; the strategy's context
        (with the agent's state), or None while paused or warming up."""
        c, st = self.parts, self.state
        close_ms = candle.close_ms
        self._check_limits(balance.equity, close_ms, candle.symbol)
        position = None
        if positions:
            for p in positions:   # (a plain loop: a generator per candle costs more than the search)
                if p.symbol == candle.symbol and p.size > 0:
                    position = p
                    break
            if position is not None:
                ps.held_candles += 1
                if self._trailing:
                    self._trail(ps, position)
        if st.paused.is_set() or len(ps) < self.warmup:
            return None
        # positional: the fields in StrategyContext's order (a call with 13 keywords costs more)
        ctx = StrategyContext(candle.symbol, candle.interval, close_ms, candle.close,
                              self._candles(ps, candle.interval), ps.indicators, ps.regime, (), position,
                              balance, None, self._allow_short,
                              {"mode": st.mode, "training": st.training})
        if self.learner is not None:   # the agent's state, built once: decide and learn share it
            try:       # (the same context with its state; dataclasses.replace costs more than the state)
                state = self.learner.state_for(ctx)
            except BotError as exc:
                self.report_error(exc, f"{candle.symbol}: strategy {c.strategy.name}")
                return None
            ctx = StrategyContext(ctx.symbol, ctx.interval, close_ms, ctx.price, ctx.candles, ctx.indicators,
                                  ctx.regime, (), position, balance, state, ctx.allow_short, ctx.extra)
        return ctx

    def _candles(self, ps: PairState, interval: str) -> CandleFrames:
        """The context's candles: the last `context_candles` as a frame, built when first read."""
        n = self.context_candles
        # the arrays of this candle (one tuple, swapped whole per candle), cut when the strategy asks
        return CandleFrames(interval, lambda: ps.frame(n), ps.tail_arrays, n)

    def _finish(self, ps: PairState, ctx: StrategyContext, decision: Decision, balance: Balance) -> None:
        """4. act on the decision (review -> risk -> execute), then learn (now or after the batch)."""
        ps.last_decision = decision
        if self.learner is None:   # nothing learns from the step: no equity and pair value to keep
            self._act(ps, ctx, decision)
            return
        before = (balance.equity, self.state.book.value(ctx.symbol, ctx.price))
        self._act(ps, ctx, decision)
        if self.defer_learning:
            self._pending_learn.append((ps, ctx, before))   # after the batch's orders (see flush_learning)
        else:
            self._learn(ps, ctx, before)

    def new_pair(self, symbol: str, *, before_ms: int | None = None) -> PairState:
        """Start tracking `symbol`, warmed up from the feed's history (candles before `before_ms`)."""
        history = None     # none without a feed (a backtest's engine): the candles come one by one
        market = self.parts.market
        if market is not None:
            try:
                history = market.history(symbol, TAIL)
                if before_ms is not None:        # the candle being processed is not history yet
                    history = history[history.index < before_ms]
            except BotError as exc:
                log.warning("%s %s: no warm-up history (%s)", self.source, symbol, exc)
        ps = PairState(symbol, self.settings.CANDLE_INTERVAL, history,
                       bollinger=(self.settings.BB_PERIOD, self.settings.BB_STD))
        if len(ps) > self.stream_min:
            ps.stream = self._new_stream(ps)
            ps.regime = ps.stream.regime()
        if self.learner is not None and len(ps) >= self.warmup:   # the agent's state, seeded off the candle path
            self.learner.prime(symbol, ps.interval, ps.frame(self.context_candles))
        self.state.pairs[symbol] = ps
        return ps

    # -- acting on a decision ----------------------------------------------------------------------
    def _act(self, ps: PairState, ctx: StrategyContext, decision: Decision) -> None:
        target = decision.target
        if target == SHORT and not ctx.allow_short:
            target = FLAT
        current = ctx.position_target
        if target == current:
            return
        if self.parts.review is not None and target != FLAT:
            # proposal -> analyst review -> risk review (bot/strategies/review.py); a veto turns it into flat,
            # so a vetoed reversal still closes the old side. Journaled and published by the pipeline.
            decision = self.parts.review.review(decision, ctx).decision
            target = decision.target
            if target == current:
                return
        sym = ps.symbol
        if current != FLAT:
            closed, why, _fills = self._close(sym, reason="signal", why=decision.reason)
            if not closed:   # never open the other side while the old one may still be there
                log.warning("%s %s: close failed (%s); not opening %s", self.source, sym, why,
                            _SIDE.get(target, "flat"))
                return
        if target == FLAT:
            return
        if not self.entries_allowed(sym, _SIDE[target], ctx.time_ms):
            return
        self._open(ps, _SIDE[target], ctx.price, ctx.time_ms, decision=decision, source="bot")

    def entries_allowed(self, symbol: str, side: str, time_ms: int) -> bool:
        """Circuit breaker and hot-pair membership; exits never ask."""
        from bot.safety.risk import RiskDecision

        c = self.parts
        if not c.errors.allows_entries():
            c.risk.record_veto(RiskDecision(False, symbol, side, rule="circuit",
                                            reason=f"circuit breaker {c.errors.state}: {c.errors.reason}"),
                               time_ms=time_ms)
            return False
        active = self.state.active_pairs
        if active and symbol not in active:
            c.risk.record_veto(RiskDecision(False, symbol, side, rule="not_hot",
                                            reason=f"{symbol} left the hot-pair set; only its exit is managed"),
                               time_ms=time_ms)
            return False
        return True

    def _open(self, ps: PairState, side: str, price: float, time_ms: int, *, decision: Decision | None = None,
              requested: float | None = None, source: str = "bot", protect: bool = True) -> tuple[bool, str, list[Fill]]:
        c = self.parts
        balance = c.exchange.get_balance()
        verdict = c.risk.evaluate_entry(
            symbol=ps.symbol, side=side, price=price, atr=ps.atr(), equity=balance.equity,
            positions=c.exchange.get_positions(), regime=ps.regime, atr_median=ps.atr_median(),
            stop_loss=decision.stop_loss if decision else None,
            take_profit=decision.take_profit if decision else None, time_ms=time_ms, source=source,
            requested=requested)
        if not verdict.approved:
            return False, verdict.reason, []
        if verdict.reason:
            log.info("%s %s: %s", self.source, ps.symbol, verdict.reason)
        try:
            ok, msg, fills = c.broker.open(ps.symbol, side, verdict.notional,
                                           stop_loss=verdict.stop_loss if protect else None,
                                           take_profit=verdict.take_profit if protect else None,
                                           reason="manual" if source == "manual" else "signal")
        except OutcomeUnknownError as exc:
            self.report_error(exc, f"{ps.symbol}: open {side}")
            if source == "manual":
                raise            # a person must not read "failed" and place it again
            return False, f"order sent, outcome unknown: {exc}", []
        except BotError as exc:
            self.report_error(exc, f"{ps.symbol}: open {side}")
            return False, f"order failed: {exc}", []
        for f in fills:
            self._book_fill(f)
        ps.held_candles = 0
        if ok:
            c.errors.record_success()
            record = durable(c.journal)
            pos = self.position(ps.symbol) if record is not None else None   # (none to journal it in: not read)
            if pos is not None and record is not None:
                # the stop the order carried is journaled (spot has no server-side stop to read back)
                linear = self.settings.EXCHANGE_CATEGORY == "linear"
                entry = sum(f.qty * f.price for f in fills) / sum(f.qty for f in fills) if fills else pos.entry_price
                pos = protected(pos if linear else dataclasses.replace(pos, entry_price=entry),
                                journal_row(record, ps.symbol, self.state.book.mode),
                                stop=self._on_tick(ps.symbol, verdict.stop_loss) if protect else None)
                record.upsert_position(pos, mode=self.state.book.mode)
            if not log.isEnabledFor(logging.INFO):   # a backtest: the line's sums and label cost more than the order
                return ok, msg, fills
            why = f" ({decision.reason})" if decision and decision.reason else ""
            log.info("%s %s opened %s %.6g @ %.6g (%.2f USDT), stop %.6g, take-profit %.6g%s", self.label,
                     ps.symbol, side, sum(f.qty for f in fills), fills[-1].price,
                     sum(f.qty * f.price for f in fills), verdict.stop_loss, verdict.take_profit, why)
        return ok, msg, fills

    def _close(self, symbol: str, *, reason: str, why: str = "") -> tuple[bool, str, list[Fill]]:
        try:
            ok, msg, fills = self.parts.broker.close(symbol, reason=reason)
        except BotError as exc:
            if self.state.mode == "LIVE" and not isinstance(exc, InvalidOrderError):
                # the close policy kept at it until CLOSE_DEADLINE_SECONDS: a person must act now
                record = durable(self.parts.journal)
                if record is not None:
                    record.set_state(UNCLOSED + symbol, {"time_ms": int(self.clock() * 1000), "reason": reason,
                                                         "error": str(exc)})
                self.state.unclosed[symbol] = str(exc)
                self.bus.emit(EventKind.CRITICAL, f"🚨 CRITICAL ERROR 🚨 {symbol} could not be closed ({reason}) "
                              f"within {self.settings.CLOSE_DEADLINE_SECONDS:g} s: {exc}. The position is still open "
                              "(unclosed in the journal); close it on Bybit by hand.", level="CRITICAL",
                              symbol=symbol, unclosed=True)
            self.report_error(exc, f"{symbol}: close ({reason})")
            return False, f"close failed: {exc}", []
        if ok and self.state.unclosed.pop(symbol, None) is not None:   # the journal's marks, loaded at prepare
            record = durable(self.parts.journal)
            if record is not None:
                record.set_state(UNCLOSED + symbol, None)
        for f in fills:
            self._book_fill(f if f.reason == reason else dataclasses.replace(f, reason=reason))
        return ok, msg, fills

    def _trail(self, ps: PairState, position: Position) -> None:
        new = self.parts.risk.trailing_stop(position, ps.price, ps.atr())
        if new is None:
            return
        linear = self.settings.EXCHANGE_CATEGORY == "linear"
        new = self._on_tick(ps.symbol, new)
        try:
            if linear:
                self.parts.broker.set_stop(ps.symbol, new)
        except BotError as exc:
            self.report_error(exc, f"{ps.symbol}: trailing stop")
            return
        record = durable(self.parts.journal)
        if record is not None:   # the trailed stop survives a stop, a crash and a restart
            mode = self.state.book.mode
            record.upsert_position(protected(position, journal_row(record, ps.symbol, mode), stop=new,
                                             entry_from_exchange=linear), mode=mode)

    # -- fills -> trades -> journal -> events ------------------------------------------------------
    def _book_fill(self, fill: Fill) -> ClosedTrade | None:
        st = self.state
        if self._coasts:
            self._coasts.pop(fill.symbol, None)   # the position changed: the strategy is asked again
        ps = st.pairs.get(fill.symbol)
        if ps is not None:
            ps.markers.append(TradeMarker(fill.time_ms, fill.price, fill.side, fill.reason))
        trade = st.book.apply(fill, dust=self._dust(fill.symbol))
        if trade is None:
            return None
        st.recent_trades.append(trade)
        st.session.add(trade)
        record = durable(self.parts.journal)
        if record is not None:
            record.close_position(trade)
        if self.bus.quiet():   # nobody would see the event (a backtest): no message to build
            return trade
        kind = {"stop-loss": EventKind.STOP_LOSS, "take-profit": EventKind.TAKE_PROFIT}.get(trade.reason,
                                                                                          EventKind.TRADE)
        self.bus.emit(kind, f"{self.label} {trade.symbol} {trade.side} closed ({trade.reason}) "
                            f"{trade.entry_price:.6g} -> {trade.exit_price:.6g}, P&L {trade.pnl:+.2f} USDT "
                            f"after {trade.fees:.2f} fees", symbol=trade.symbol, pnl=trade.pnl, reason=trade.reason,
                      exit_time=ms_to_iso(trade.exit_ms))
        return trade

    # -- shared with the session -------------------------------------------------------------------
    def report_error(self, exc: BaseException, context: str) -> None:
        """Count `exc` with the error handler (circuit breaker); re-raise it when it is critical."""
        self.state.errors_seen.append(f"{time.strftime('%H:%M:%S', time.gmtime())} {context}: {exc}")
        if self.parts.errors.handle(exc, context).critical:
            raise exc

    def position(self, symbol: str) -> Position | None:
        one = getattr(self.parts.exchange, "get_position", None)   # the paper exchange: one record, not all
        if one is not None:
            p = one(symbol)
            return p if p is not None and p.size > 0 else None
        for p in self.parts.exchange.get_positions():
            if p.symbol == symbol and p.size > 0:
                return p
        return None

    def _on_tick(self, symbol: str, price: float | None) -> float | None:
        """`price` rounded to the symbol's tick, as the exchange holds it (a journaled stop that
        differs from Bybit's by rounding alone is the same stop)."""
        if not price:
            return price
        try:
            return round_to_tick(price, self.parts.exchange.get_instrument(symbol).tick_size)
        except BotError:
            return price

    def _dust(self, symbol: str) -> float:
        """Spot: what a close leaves that can never be sold (less than one quantity step; Bybit
        takes a buy's fee in the coin bought). Linear positions close exactly."""
        if self.settings.EXCHANGE_CATEGORY != "spot":
            return 0.0
        try:
            return float(self.parts.exchange.get_instrument(symbol).qty_step)
        except BotError:
            return 0.0

    @property
    def label(self) -> str:
        """What a trade line is labelled: the mode and, while a session runs, the data really in use
        ("LIVE, Bybit data", "PAPER, REPLAY data"); the mode alone for orders given by hand."""
        m = self.parts.market
        if m is None:
            return str(self.state.mode)
        return f"{self.state.mode}, {'Bybit' if m.source == DataSource.LIVE else 'REPLAY'} data"

    @property
    def source(self) -> str:
        """LIVE or REPLAY: where this session's candles come from (REPLAY when driven by hand)."""
        m = self.parts.market
        return m.source if m is not None else DataSource.REPLAY
