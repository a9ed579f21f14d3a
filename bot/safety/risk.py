"""The guardian between a strategy's wish and an order: limits, stops, sizing, and hard stops.

`RiskManager.evaluate_entry()` approves, resizes or vetoes a new position; exits are never
vetoed (getting out is always allowed). `check_limits()` watches the account as a whole and
raises `RiskViolationError` when the daily loss limit or the max drawdown from peak is broken;
from then on every entry is vetoed until the UTC day rolls over (daily loss) or a person resets
it (drawdown). Every veto is journaled with its reason and published as an `Event(kind='veto')`.

Rules, in the order they are checked (all numbers from `Settings`):
1. entries halted (daily loss / drawdown) -> veto
2. max open positions (MAX_OPEN_POSITIONS) -> veto
3. stop from ATR (STOP_ATR_MULT) or fixed % (STOP_LOSS_PCT); take-profit from ATR
   (TAKE_PROFIT_ATR_MULT, or the same reward multiple in percent mode). A volatile regime
   widens the stop by VOLATILE_STOP_MULT -- and the take-profit by the same factor, otherwise
   the default 2.5/5 ATR pair would fall below the minimum reward/risk and no volatile entry
   could ever pass.
4. reward/risk below MIN_REWARD_RISK -> veto
5. size = the executor's sizing rule (5 % of equity, >= 10 USDT) x regime multiplier
   (trending / choppy / volatile) x `dynamic_adjustment()` (volatility spike)
6. risk per trade (entry to stop) above MAX_RISK_PER_TRADE x equity -> resized down; veto if the
   resized order would be below MIN_ORDER_USDT
7. summed risk of open positions + this one above MAX_TOTAL_RISK x equity -> resized; veto if too small
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.errors import RiskViolationError
from bot.events import EventBus, EventKind
from bot.journal.base import Journal
from bot.records import fast_init
from bot.types import Position

__all__ = ["RiskManager", "RiskDecision", "RiskViolationError", "stop_distance_of"]

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
_REGIME_SIZE = {"trending": "REGIME_SIZE_TRENDING", "choppy": "REGIME_SIZE_CHOPPY", "volatile": "REGIME_SIZE_VOLATILE"}


@fast_init
@dataclass(frozen=True)
class RiskDecision:
    """The verdict on one proposed entry. `notional` is the approved order value in USDT."""

    approved: bool
    symbol: str
    side: str                       # long | short
    reason: str = ""                # why vetoed, or what was resized
    rule: str = ""                  # which rule vetoed (halted, max_positions, reward_risk, ...)
    notional: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    risk_usdt: float = 0.0          # loss if the stop is hit (before fees)
    size_mult: float = 1.0          # regime x volatility multiplier that was applied


def stop_distance_of(position: Position) -> float:
    """Money lost if this position's stop is hit (0 without a stop, or a stop already in profit)."""
    if position.stop_loss is None:
        return position.size * position.entry_price  # no stop: the whole notional is at risk
    loss_per_unit = (position.entry_price - position.stop_loss) * position.direction
    return max(0.0, loss_per_unit * position.size)


class RiskManager:
    """Approves, resizes or vetoes entries and enforces the account-wide loss limits."""

    def __init__(self, settings: Any, *, sizer: Callable[[float], float] | None = None,
                 journal: Journal | None = None, bus: EventBus | None = None) -> None:
        """`sizer(equity) -> notional USDT` is the executor's sizing rule (`TradeExecutor.size_for`);
        the risk manager scales what it returns and never re-implements it when one is given."""
        self.settings = settings
        self._sizer = sizer
        self.journal = journal
        self.bus = bus
        self._lock = threading.Lock()
        self.peak_equity = 0.0
        self.day_start_equity = 0.0
        self.day = -1
        self.halted_reason = ""          # non-empty: no new entries
        self.halt_rule = ""              # daily_loss | max_drawdown
        self.vetoes = 0

    # -- sizing ------------------------------------------------------------------------------------
    def base_notional(self, equity: float) -> float:
        if self._sizer is not None:
            return float(self._sizer(equity))
        # Only when no executor is wired (unit tests of the rules): the same seed rule as the executor.
        s = self.settings
        return max(equity * s.POSITION_SIZE_PCT, s.MIN_ORDER_USDT)

    def regime_multiplier(self, regime: str) -> float:
        return float(getattr(self.settings, _REGIME_SIZE.get(regime, "REGIME_SIZE_CHOPPY")))

    def dynamic_adjustment(self, atr: float, atr_median: float) -> float:
        """Size multiplier for the current volatility: 1 normally; when ATR / its median exceeds
        VOLATILITY_SPIKE_RATIO, 1 / ratio, so the money at risk stays about what it was before
        the spike (risk scales with ATR, size with its inverse)."""
        if atr_median <= 0 or atr <= 0:
            return 1.0
        ratio = atr / atr_median
        return 1.0 / ratio if ratio > self.settings.VOLATILITY_SPIKE_RATIO else 1.0

    # -- stops ---------------------------------------------------------------------------------------
    def stop_and_target(self, side: str, price: float, atr: float, regime: str = "choppy"
                        ) -> tuple[float, float]:
        """Stop-loss and take-profit prices for an entry at `price`."""
        s = self.settings
        widen = s.VOLATILE_STOP_MULT if regime == "volatile" else 1.0
        if s.STOP_LOSS_MODE == "atr":
            stop_d = s.STOP_ATR_MULT * atr * widen
            tp_d = s.TAKE_PROFIT_ATR_MULT * atr * widen
        else:
            stop_d = s.STOP_LOSS_PCT * price * widen
            tp_d = stop_d * s.TAKE_PROFIT_ATR_MULT / s.STOP_ATR_MULT  # same reward multiple as ATR mode
        d = 1 if side == "long" else -1
        return price - d * stop_d, price + d * tp_d

    def trailing_stop(self, position: Position, price: float, atr: float) -> float | None:
        """A tighter stop when the price has moved in our favour (TRAILING_STOP on), else None.
        The stop only ever moves towards profit."""
        if not self.settings.TRAILING_STOP or atr <= 0:
            return None
        dist = self.settings.TRAILING_ATR_MULT * atr
        if position.side == "long":
            new = price - dist
            return new if position.stop_loss is None or new > position.stop_loss else None
        new = price + dist
        return new if position.stop_loss is None or new < position.stop_loss else None

    # -- account-wide limits ---------------------------------------------------------------------
    def check_limits(self, equity: float, time_ms: int) -> None:
        """Track the day's start equity and the peak; raise `RiskViolationError` when the daily
        loss limit or the max drawdown is broken (once: later calls only keep entries halted)."""
        s = self.settings
        with self._lock:
            day = int(time_ms) // DAY_MS
            if day != self.day:
                self.day = day
                self.day_start_equity = equity
                if self.halt_rule == "daily_loss":
                    log.info("new UTC day: the daily loss halt is lifted")
                    self.halted_reason, self.halt_rule = "", ""
            if equity > self.peak_equity:    # max(), without the call: this runs on every candle
                self.peak_equity = equity
            if self.halted_reason:
                return
            if self.day_start_equity > 0:
                loss = 1.0 - equity / self.day_start_equity
                if loss > s.DAILY_LOSS_LIMIT:
                    self.halted_reason = (f"daily loss {loss:.2%} broke the limit {s.DAILY_LOSS_LIMIT:.2%} "
                                          f"(day start {self.day_start_equity:.2f}, now {equity:.2f} USDT)")
                    self.halt_rule = "daily_loss"
                    raise RiskViolationError(self.halted_reason + "; no new entries until the next UTC day")
            if self.peak_equity > 0:
                dd = 1.0 - equity / self.peak_equity
                if dd > s.MAX_DRAWDOWN:
                    self.halted_reason = (f"drawdown {dd:.2%} from peak {self.peak_equity:.2f} broke the limit "
                                          f"{s.MAX_DRAWDOWN:.2%}")
                    self.halt_rule = "max_drawdown"
                    raise RiskViolationError(self.halted_reason + "; no new entries until reset")

    def reset_halt(self, equity: float | None = None) -> None:
        """A person lifts the halt (e.g. after reviewing a drawdown); the peak restarts from `equity`."""
        with self._lock:
            self.halted_reason, self.halt_rule = "", ""
            if equity is not None:
                self.peak_equity = equity
                self.day_start_equity = equity

    # -- the entry verdict -----------------------------------------------------------------------
    def evaluate_entry(self, *, symbol: str, side: str, price: float, atr: float, equity: float,
                       positions: Iterable[Position], regime: str = "choppy", atr_median: float = 0.0,
                       stop_loss: float | None = None, take_profit: float | None = None,
                       time_ms: int = 0, source: str = "bot", requested: float | None = None) -> RiskDecision:
        """Approve (possibly smaller) or veto opening `side` on `symbol` at `price`.

        `stop_loss` / `take_profit` are a strategy's suggestions; they are used when they lie on
        the right side of the price, otherwise the configured rule sets them. `requested` is a
        person's order value in USDT: it replaces the sizing rule and is refused, not shrunk, when
        it breaks a risk limit. Vetoes are journaled and published."""
        s = self.settings
        others = [p for p in positions if p.symbol != symbol and p.size > 0]

        def veto(rule: str, reason: str, **kw: Any) -> RiskDecision:
            d = RiskDecision(False, symbol, side, reason=reason, rule=rule, **kw)
            self.record_veto(d, time_ms=time_ms, source=source)
            return d

        if self.halted_reason:
            return veto("halted", f"entries stopped: {self.halted_reason}")
        if len(others) >= s.MAX_OPEN_POSITIONS:
            return veto("max_positions", f"{len(others)} positions open, the limit is {s.MAX_OPEN_POSITIONS}")
        if price <= 0 or not atr > 0 and s.STOP_LOSS_MODE == "atr":
            return veto("no_atr", f"no ATR yet for {symbol} (price {price}, ATR {atr}); cannot place a stop")

        stop, tp = self.stop_and_target(side, price, atr, regime)
        d = 1 if side == "long" else -1
        if stop_loss is not None and (price - stop_loss) * d > 0:
            stop = stop_loss
        if take_profit is not None and (take_profit - price) * d > 0:
            tp = take_profit
        stop_d, tp_d = abs(price - stop), abs(tp - price)
        rr = tp_d / stop_d if stop_d > 0 else 0.0
        if rr + 1e-9 < s.MIN_REWARD_RISK:
            return veto("reward_risk", f"reward/risk {rr:.2f} is below the minimum {s.MIN_REWARD_RISK:.2f} "
                        f"(stop {stop:.6g}, take-profit {tp:.6g}, entry {price:.6g})",
                        stop_loss=stop, take_profit=tp)

        mult = self.regime_multiplier(regime) * self.dynamic_adjustment(atr, atr_median)
        notional = max(self.base_notional(equity) * mult, s.MIN_ORDER_USDT)
        if requested is not None:
            mult, notional = 1.0, float(requested)
        stop_frac = stop_d / price
        notes = []
        cap = s.MAX_RISK_PER_TRADE * equity / stop_frac
        if notional > cap + 1e-9:
            if cap < s.MIN_ORDER_USDT or requested is not None:
                size = notional if requested is not None else s.MIN_ORDER_USDT
                return veto("risk_per_trade",
                            f"risk per trade: {size:.2f} USDT would lose "
                            f"{size * stop_frac:.2f} USDT at the stop, above "
                            f"{s.MAX_RISK_PER_TRADE:.2%} of equity ({s.MAX_RISK_PER_TRADE * equity:.2f} USDT)",
                            stop_loss=stop, take_profit=tp, size_mult=mult)
            notes.append(f"resized {notional:.2f} -> {cap:.2f} USDT for the per-trade risk limit")
            notional = cap
        open_risk = sum(stop_distance_of(p) for p in others)
        room = s.MAX_TOTAL_RISK * equity - open_risk
        if notional * stop_frac > room + 1e-9:
            cap_total = max(room, 0.0) / stop_frac
            if cap_total < s.MIN_ORDER_USDT or requested is not None:
                return veto("total_risk",
                            f"concurrent risk: open positions already risk {open_risk:.2f} USDT; "
                            f"the limit is {s.MAX_TOTAL_RISK:.2%} of equity ({s.MAX_TOTAL_RISK * equity:.2f} USDT)",
                            stop_loss=stop, take_profit=tp, size_mult=mult)
            notes.append(f"resized {notional:.2f} -> {cap_total:.2f} USDT for the concurrent risk limit")
            notional = cap_total
        return RiskDecision(True, symbol, side, reason="; ".join(notes), notional=notional, stop_loss=stop,
                            take_profit=tp, risk_usdt=notional * stop_frac, size_mult=mult)

    def record_veto(self, d: RiskDecision, *, time_ms: int = 0, source: str = "bot") -> None:
        """Journal and publish a veto (the journal is optional: backtests run without one)."""
        self.vetoes += 1
        msg = f"VETO {d.symbol} {d.side} ({d.rule}): {d.reason}"
        if self.journal is not None:
            self.journal.record_veto(d.symbol, source, f"{d.rule}: {d.reason}",
                                     {"side": d.side, "rule": d.rule, "time_ms": int(time_ms)})
        if self.bus is not None:
            self.bus.emit(EventKind.VETO, msg, level="WARNING", symbol=d.symbol, side=d.side, rule=d.rule,
                          reason=d.reason, source=source)
        else:
            log.warning("%s", msg)
