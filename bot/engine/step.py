"""The per-candle step of the engine, and the manual orders that share its risk checks.

A mixin of `TradingEngine` (bot/engine/trading_engine.py): it reads the engine's parts (`self.c`) and state
(`self.pairs`, `self.book`, ...) and is the only code that decides and sends orders, so paper,
live, backtest and a person's button all go through the same checks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from bot.engine.state import TAIL, PairState, StreamingIndicators, TradeMarker
from bot.errors import BotError, RiskViolationError
from bot.events import EventKind
from bot.strategies.base import FLAT, LONG, SHORT, Decision, StrategyContext
from bot.types import Candle, ClosedTrade, Fill, Position, ms_to_iso

__all__ = ["CandleSteps", "ManualOrderResult"]

log = logging.getLogger("bot.engine.trading_engine")

_SIDE = {LONG: "long", SHORT: "short"}


@dataclass(frozen=True)
class ManualOrderResult:
    """What became of a person's order: filled, or refused and why."""

    ok: bool
    message: str
    symbol: str
    side: str = ""
    qty: float = 0.0
    price: float = 0.0
    client_order_id: str = ""


class CandleSteps:
    """process_candle and its helpers (mixed into TradingEngine)."""

    # -- the step ----------------------------------------------------------------------------------
    def process_candle(self, candle: Candle) -> None:
        """Everything one closed candle causes, synchronously, on the calling thread."""
        if self.c is None:
            self.prepare("BACKTEST")
        c = self.c
        t0 = time.perf_counter()
        ps = self.pairs.get(candle.symbol)
        if ps is None:
            ps = self._new_pair(candle.symbol, before_ms=candle.open_ms)
        if not ps.append(candle):
            return  # already seen: a feed may repeat the last candle after a reconnect
        self.candles_processed += 1
        self.last_prices[candle.symbol] = candle.close
        self.last_candle_ms = max(self.last_candle_ms, candle.open_ms)
        self.last_close_ms = max(self.last_close_ms, candle.close_ms)
        # 1. the exchange sees the candle first: a stop hit inside it happened before our decision
        for f in c.broker.on_candle(candle):
            if hasattr(c.journal, "record_fill"):
                c.journal.record_fill(f, mode=c.exchange.mode)   # the executor did not see this one
            self._book_fill(f)
        # 2. indicators (O(1) per candle) and the regime
        if ps.stream is None and len(ps) > self._stream_min:
            ps.stream = StreamingIndicators(ps.arrays(), self.settings)
        elif ps.stream is not None:
            ps.stream.update(candle.high, candle.low, candle.close)
        if ps.stream is not None:
            ps.regime = ps.stream.regime()
        # 3. the account as a whole
        balance = c.exchange.get_balance()
        try:
            c.risk.check_limits(balance.equity, candle.close_ms)
        except RiskViolationError as exc:
            self.bus.emit(EventKind.CRITICAL, f"RISK LIMIT: {exc}", level="ERROR", symbol=candle.symbol)
        position = next((p for p in c.exchange.get_positions() if p.symbol == candle.symbol and p.size > 0), None)
        if position is not None:
            ps.held_candles += 1
            self._trail(ps, position)
        # 4. decide, check, execute
        if self._pause_evt.is_set() or len(ps) < self.warmup:
            return
        ctx = StrategyContext(
            symbol=candle.symbol, interval=candle.interval, time_ms=candle.close_ms, price=candle.close,
            candles={candle.interval: ps.frame(self.context_candles)}, indicators=ps.indicators, regime=ps.regime,
            position=position, balance=balance, allow_short=self.settings.allows_short,
            extra={"mode": self.mode, "training": self.training, "t0": t0})
        strat = c.strategy
        try:
            if hasattr(strat, "state_for"):   # the agent's state, built once: decide and learn share it
                ctx = dataclasses.replace(ctx, state=strat.state_for(ctx))
            decision = strat.decide(ctx)
        except BotError as exc:
            self._handle_error(exc, f"{candle.symbol}: strategy {getattr(strat, 'name', '?')}")
            return
        ps.last_decision = decision
        before = (balance.equity, self.book.value(candle.symbol, candle.close))
        self._act(ps, ctx, decision)
        if self.defer_learning:
            self._pending_learn.append((ps, ctx, before))   # after the batch's orders (see flush_learning)
        else:
            self._learn(ps, ctx, before)

    def flush_learning(self) -> None:
        """Learn from the steps of the last batch of candles. The loop calls it after every pair's
        order went out, so a gradient step never delays another pair's order."""
        pending, self._pending_learn = self._pending_learn, []
        for ps, ctx, before in pending:
            self._learn(ps, ctx, before)

    @property
    def context_candles(self) -> int:
        """Candles handed to the strategy: the whole tail for the agent (its slow features read up
        to 2,000), a few hundred for rule strategies (they keep longer history themselves)."""
        strat = self.c.strategy if self.c else None
        if hasattr(strat, "state_for"):
            return TAIL
        return max(500, 4 * int(getattr(strat, "warmup", 0) or 0))

    @property
    def _stream_min(self) -> int:
        """Candles before the streaming indicators can be seeded (every one of them defined)."""
        st = self.settings
        return max(st.ATR_PERIOD, 2 * st.ADX_PERIOD, st.BB_PERIOD) + 1

    @property
    def warmup(self) -> int:
        """Candles a pair needs before the strategy is asked (the agent's state needs EMA 200)."""
        strat = self.c.strategy if self.c else None
        need = int(getattr(strat, "warmup", 0) or 0)
        if hasattr(strat, "state_for"):
            from bot.analysis.features import warmup_length
            need = max(need, warmup_length(self.settings.STATE_WINDOW, self.settings) + 1)
        return max(need, self.settings.ATR_PERIOD + 2, 52)

    def _new_pair(self, symbol: str, *, before_ms: int | None = None) -> PairState:
        from bot.market.candles import make_frame

        history = make_frame([], [], [], [], [], [])
        market = self.c.market if self.c else None
        if market is not None:
            try:
                history = market.history(symbol, TAIL)
                if before_ms is not None:        # the candle being processed is not history yet
                    history = history[history.index < before_ms]
            except BotError as exc:
                log.warning("%s %s: no warm-up history (%s)", self._source(), symbol, exc)
        ps = PairState(symbol, self.settings.CANDLE_INTERVAL, history,
                       bollinger=(self.settings.BB_PERIOD, self.settings.BB_STD))
        if len(ps) > self._stream_min:
            ps.stream = StreamingIndicators(ps.arrays(), self.settings)
            ps.regime = ps.stream.regime()
        strat = self.c.strategy if self.c else None
        if hasattr(strat, "prime") and len(ps) >= self.warmup:   # the agent's state, seeded off the candle path
            strat.prime(symbol, ps.interval, ps.frame(self.context_candles))
        self.pairs[symbol] = ps
        return ps

    # -- acting on a decision ----------------------------------------------------------------------
    def _act(self, ps: PairState, ctx: StrategyContext, decision: Decision) -> None:
        target = decision.target
        if target == SHORT and not ctx.allow_short:
            target = FLAT
        current = ctx.position_target
        if target == current:
            return
        if self.c.review is not None and target != FLAT:
            # proposal -> analyst review -> risk review (bot/strategies/review.py); a veto turns it into flat,
            # so a vetoed reversal still closes the old side. Journaled and published by the pipeline.
            decision = self.c.review.review(decision, ctx).decision
            target = decision.target
            if target == current:
                return
        sym = ps.symbol
        if current != FLAT:
            closed, why, _fills = self._close(sym, reason="signal", why=decision.reason)
            if not closed:   # never open the other side while the old one may still be there
                log.warning("%s %s: close failed (%s); not opening %s", self._source(), sym, why,
                            _SIDE.get(target, "flat"))
                return
        if target == FLAT:
            return
        if not self._entries_allowed(sym, _SIDE[target], ctx.time_ms):
            return
        self._open(ps, _SIDE[target], ctx.price, ctx.time_ms, decision=decision, source="bot")

    def _entries_allowed(self, symbol: str, side: str, time_ms: int) -> bool:
        """Circuit breaker and hot-pair membership; exits never ask."""
        from bot.safety.risk import RiskDecision

        c = self.c
        if c.errors is not None and not c.errors.allows_entries():
            c.risk.record_veto(RiskDecision(False, symbol, side, rule="circuit",
                                            reason=f"circuit breaker {c.errors.state}: {c.errors.reason}"),
                               time_ms=time_ms)
            return False
        if self.active_pairs and symbol not in self.active_pairs:
            c.risk.record_veto(RiskDecision(False, symbol, side, rule="not_hot",
                                            reason=f"{symbol} left the hot-pair set; only its exit is managed"),
                               time_ms=time_ms)
            return False
        return True

    def _open(self, ps: PairState, side: str, price: float, time_ms: int, *, decision: Decision | None = None,
              requested: float | None = None, source: str = "bot") -> tuple[bool, str, list[Fill]]:
        c = self.c
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
            log.info("%s %s: %s", self._source(), ps.symbol, verdict.reason)
        try:
            ok, msg, fills = c.broker.open(ps.symbol, side, verdict.notional, stop_loss=verdict.stop_loss,
                                           take_profit=verdict.take_profit,
                                           reason="manual" if source == "manual" else "signal")
        except BotError as exc:
            self._handle_error(exc, f"{ps.symbol}: open {side}")
            return False, f"order failed: {exc}", []
        for f in fills:
            self._book_fill(f)
        ps.held_candles = 0
        if ok:
            if c.errors is not None:
                c.errors.record_success()
            pos = self._position(ps.symbol)
            if pos is not None and hasattr(c.journal, "upsert_position"):
                c.journal.upsert_position(pos, mode=self.book.mode)
            why = f" ({decision.reason})" if decision and decision.reason else ""
            log.info("%s %s %s opened %s %.6g @ %.6g (%.2f USDT), stop %.6g, take-profit %.6g%s", self.mode,
                     self._source(), ps.symbol, side, sum(f.qty for f in fills), fills[-1].price,
                     sum(f.qty * f.price for f in fills), verdict.stop_loss, verdict.take_profit, why)
        return ok, msg, fills

    def _close(self, symbol: str, *, reason: str, why: str = "") -> tuple[bool, str, list[Fill]]:
        try:
            ok, msg, fills = self.c.broker.close(symbol, reason=reason)
        except BotError as exc:
            self._handle_error(exc, f"{symbol}: close ({reason})")
            return False, f"close failed: {exc}", []
        for f in fills:
            self._book_fill(f if f.reason == reason else dataclasses.replace(f, reason=reason))
        return ok, msg, fills

    def _trail(self, ps: PairState, position: Position) -> None:
        new = self.c.risk.trailing_stop(position, ps.price, ps.atr())
        if new is None:
            return
        try:
            self.c.broker.set_stop(ps.symbol, new)
        except BotError as exc:
            self._handle_error(exc, f"{ps.symbol}: trailing stop")

    def _learn(self, ps: PairState, ctx: StrategyContext, before: tuple[float, float]) -> None:
        """Online learning: the transition from the previous candle of this pair to this one.

        The reward is the pair's own P&L over the step (fees of the action included, marked at
        the close) as a log-return of the account equity, through `RewardSystem`; the action is
        the position actually held after the risk manager, not the one the agent asked for."""
        strat = self.c.strategy
        if ctx.state is None or not hasattr(strat, "observe"):
            return
        if not self.training:
            ps.learn_prev = None
            return
        pos = self._position(ps.symbol)
        taken = 0 if pos is None else pos.direction
        eq_now, value_now = before
        prev = ps.learn_prev
        if prev is not None:
            s0, was0, took0, eq0, v0 = prev
            after = eq0 + (value_now - v0)
            if eq0 > 0 and after > 0:
                reward = float(self.reward.compute(eq0, after, position_changes=abs(took0 - was0)))
                try:
                    strat.observe(s0, took0, reward, ctx.state, False, symbol=ps.symbol, time_ms=ctx.time_ms)
                    loss = strat.learn()
                except BotError as exc:
                    self._handle_error(exc, f"{ps.symbol}: learner")
                    loss = None
                self.learner_stats["reward"] = reward
                if loss is not None:
                    self.learner_stats["loss"] = float(loss)
                    self.learner_stats["steps"] = self.learner_stats.get("steps", 0) + 1
                    if int(self.learner_stats["steps"]) % self.settings.CHECKPOINT_EVERY == 0:
                        self._checkpoint()
        ps.learn_prev = (ctx.state, ctx.position_target, taken, eq_now, value_now)

    def _checkpoint(self) -> None:
        strat = self.c.strategy
        if hasattr(strat, "save"):
            try:
                path = strat.save()
                log.info("agent checkpoint written: %s", path)
            except BotError as exc:
                self._handle_error(exc, "agent checkpoint")

    # -- fills -> trades -> journal -> events ------------------------------------------------------
    def _book_fill(self, fill: Fill) -> ClosedTrade | None:
        ps = self.pairs.get(fill.symbol)
        if ps is not None:
            ps.markers.append(TradeMarker(fill.time_ms, fill.price, fill.side, fill.reason))
        trade = self.book.apply(fill)
        if trade is None:
            return None
        self.recent_trades.append(trade)
        st = self.session_stats
        st["trades"] += 1
        st["wins"] += trade.pnl > 0
        st["net"] += trade.pnl
        st["fees"] += trade.fees
        j = self.c.journal
        if hasattr(j, "close_position"):
            j.close_position(trade)
        kind = {"stop-loss": EventKind.STOP_LOSS, "take-profit": EventKind.TAKE_PROFIT}.get(trade.reason,
                                                                                          EventKind.TRADE)
        self.bus.emit(kind, f"{self.mode} {self._source()} {trade.symbol} {trade.side} closed ({trade.reason}) "
                            f"{trade.entry_price:.6g} -> {trade.exit_price:.6g}, P&L {trade.pnl:+.2f} USDT "
                            f"after {trade.fees:.2f} fees", symbol=trade.symbol, pnl=trade.pnl, reason=trade.reason,
                      exit_time=ms_to_iso(trade.exit_ms))
        return trade

    # -- a person's orders -----------------------------------------------------------------------
    def _manual_order(self, symbol: str, side: str, usdt: float) -> ManualOrderResult:
        side_l = {"buy": "long", "long": "long", "sell": "short", "short": "short"}.get(side.lower())
        if side_l is None:
            return ManualOrderResult(False, f"side {side!r} is not known; use buy or sell", symbol)
        if usdt <= 0 or not np.isfinite(usdt):
            return ManualOrderResult(False, f"amount {usdt} USDT must be a positive number", symbol)
        if side_l == "short" and not self.settings.allows_short:
            return ManualOrderResult(False, "shorts are not possible on spot; sell closes via Close position", symbol)
        ps = self.pairs.get(symbol) or self._new_pair(symbol)
        price = self.last_prices.get(symbol) or ps.price or self.c.exchange.get_price(symbol)
        pos = self._position(symbol)
        if pos is not None and pos.side != side_l:
            return ManualOrderResult(False, f"{symbol} has an open {pos.side} position; close it first", symbol)
        time_ms = int(self.clock() * 1000)
        if self.c.errors is not None and not self.c.errors.allows_entries():
            return ManualOrderResult(False, f"circuit breaker {self.c.errors.state}: {self.c.errors.reason}", symbol)
        ok, msg, fills = self._open(ps, side_l, price, time_ms, requested=usdt, source="manual")
        qty = sum(f.qty for f in fills)
        px = fills[-1].price if fills else 0.0
        cid = fills[-1].client_order_id if fills else ""
        return ManualOrderResult(ok, msg, symbol, "Buy" if side_l == "long" else "Sell", qty, px, cid)

    def _manual_close(self, symbol: str) -> ManualOrderResult:
        if self._position(symbol) is None:
            return ManualOrderResult(False, f"no open position on {symbol}", symbol)
        ok, msg, fills = self._close(symbol, reason="manual")
        return ManualOrderResult(ok, msg, symbol, fills[-1].side if fills else "", sum(f.qty for f in fills),
                                 fills[-1].price if fills else 0.0, fills[-1].client_order_id if fills else "")

    def close_all(self, reason: str = "close-all") -> list[ClosedTrade]:
        """Market-close every open position (on the calling thread)."""
        before = len(self.recent_trades)
        for p in list(self.c.exchange.get_positions()):
            if p.size > 0:
                self._close(p.symbol, reason=reason)
        return list(self.recent_trades)[before:]

    def _handle_error(self, exc: BaseException, context: str) -> None:
        self.errors_seen.append(f"{time.strftime('%H:%M:%S', time.gmtime())} {context}: {exc}")
        if self.c is not None and self.c.errors is not None:
            verdict = self.c.errors.handle(exc, context)
            if verdict.critical:
                raise exc
        else:
            log.error("%s: %s", context, exc)

