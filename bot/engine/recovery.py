"""Restart protection: before the first trade, make the journal and the exchange agree.

`recover()` runs once per start, paper or live alike (paper recovers from the persisted paper
wallet, which is its "exchange"):

1. reload the agent checkpoint when there is one (a corrupt one raises `CheckpointError`: the
   bot must not trade on a half-loaded state);
2. resolve every unresolved order intent by its client order id: found on the exchange ->
   its status and fills are journaled (one transaction); a filled order whose journaled fills
   fall short of its filled quantity gets its missing executions read and journaled; not found and never marked sent -> FAILED (it never
   left); marked sent but not found -> asked again after a moment, then tracked as LOST and
   polled by the `Reconciler` until it is known (after `lost_timeout_s` unseen it is declared
   never accepted);
3. reconcile positions: a position on the exchange that the journal lacks is *restored* when
   the journal's own fills explain it (a crash between fill and bookkeeping), otherwise
   *adopted* (ADOPTED_POSITIONS=manage; it gets a stop-loss at STOP_LOSS_PCT if it has none) or
   closed (ADOPTED_POSITIONS=close, through a journaled intent like any order); a journal
   position the exchange no longer has is closed in the journal with reason 'reconcile' and
   the P&L of the fills when they are known; sizes that differ follow the exchange;
4. open orders the journal knows are updated; unknown ones are reported and left alone.

Everything reconciled is logged and published as `Event(kind=EventKind.RECONCILE)`.
`Reconciler` runs the same steps (not the agent) every RECONCILE_INTERVAL_SECONDS while live,
because positions closed outside the bot (by hand, liquidation, a server-side stop) are the
usual way bots lose track of reality.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import BotError, InvalidOrderError
from bot.events import Event, EventBus, EventKind
from bot.exchange.base import round_to_tick
from bot.exchange.ledger import replay_fills
from bot.types import ClosedTrade, Fill, Mode, OrderIntent, OrderStatus, Position

if TYPE_CHECKING:
    from bot.engine.components import EngineJournal
    from bot.exchange.base import Exchange
    from config import Settings

__all__ = ["recover", "Reconciler", "RecoveryReport", "ReconcileItem", "AgentCheckpoints", "resolve_lost",
           "protected"]

log = logging.getLogger(__name__)

# Findings that stay true from one periodic check to the next: reported once per Reconciler.
_ONCE = frozenset({"foreign-order", "stop"})
_WARN_KINDS = frozenset({"adopted", "closed", "lost", "resized", "foreign-order", "closed-adopted"})


@dataclass(frozen=True)
class ReconcileItem:
    """One thing recovery changed or found. kind: resolved / fills / failed / lost / restored /
    adopted / closed-adopted / closed / resized / stop / foreign-order."""

    kind: str
    symbol: str
    message: str
    client_order_id: str = ""


@dataclass(frozen=True)
class RecoveryReport:
    mode: str
    items: tuple[ReconcileItem, ...] = ()
    errors: tuple[str, ...] = ()
    agent_checkpoint: str | None = None
    positions: tuple[Position, ...] = ()          # the exchange's positions after reconciliation
    lost: tuple[str, ...] = ()                    # client order ids still LOST (sent, fate unknown)
    time_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def ok(self) -> bool:
        """True when everything could be checked and nothing is still unknown."""
        return not self.errors and not self.lost

    def summary(self) -> str:
        if not self.items and not self.errors:
            return (f"{self.mode}: journal and exchange agree ({len(self.positions)} open position(s), "
                    "no pending orders)")
        counts: dict[str, int] = {}
        for i in self.items:
            counts[i.kind] = counts.get(i.kind, 0) + 1
        parts = [f"{n} {k}" for k, n in counts.items()] + [f"{len(self.errors)} check(s) failed"] * bool(self.errors)
        return f"{self.mode}: reconciled with the exchange: " + ", ".join(parts)


class _CheckpointStore(Protocol):
    def latest(self) -> Path | None: ...


class AgentCheckpoints(Protocol):
    """The agent's checkpoints as recovery reloads them (`bot.agent.self_learning.SelfLearningBot`)."""

    @property
    def store(self) -> _CheckpointStore: ...

    def load(self, path: str | Path | None = None) -> Path: ...


def protected(p: Position, row: Position | None, *, stop: float | None = None,
              entry_from_exchange: bool = True) -> Position:
    """The position to journal: the exchange's side, size and marks; from the journal's row of the
    same side its open time, fees and (when the exchange's entry is only a mark, as on spot) its
    entry; and the tightest stop anyone knows of (the exchange's, the journal's, `stop`): a stop
    is never loosened by a restart, a resize or a clean stop, only tightened."""
    same = row is not None and row.side == p.side
    stops = [x for x in (p.stop_loss, row.stop_loss if same and row is not None else None, stop) if x]
    tight = (max(stops) if p.side == "long" else min(stops)) if stops else None
    if not same or row is None:
        return replace(p, stop_loss=tight)
    return replace(p, stop_loss=tight, take_profit=p.take_profit or row.take_profit,
                   entry_price=p.entry_price if entry_from_exchange and p.entry_price else row.entry_price,
                   opened_ms=row.opened_ms or p.opened_ms, fees=p.fees or row.fees,
                   trailing_stop=p.trailing_stop or row.trailing_stop)


def journal_row(journal: Any, symbol: str, mode: str) -> Position | None:
    """The journal's open position of `symbol` in `mode`, or None."""
    return next((q for q in journal.positions(Mode(mode)) if q.symbol == symbol), None)


def _new_cid() -> str:
    return f"rcn-{uuid.uuid4().hex[:24]}"


class _Run:
    """One reconciliation pass; collects items and publishes them."""

    def __init__(self, settings: Settings, exchange: Exchange, journal: EngineJournal, bus: EventBus | None, *,
                 strict: bool, sleep: Callable[[float], None], recheck_delay: float, lost_timeout_s: float,
                 wall: Callable[[], float], seen: set[tuple[str, str, str]] | None = None) -> None:
        self.s, self.ex, self.bus = settings, exchange, bus
        # The SQLite record in every session; a backtest's memory journal has no position tables,
        # which `positions` checks before it reads them.
        self.j: Any = journal
        self.seen = set() if seen is None else seen
        self.mode = Mode(exchange.mode)
        self.strict = strict
        self.sleep, self.recheck_delay, self.lost_timeout_s, self.wall = sleep, recheck_delay, lost_timeout_s, wall
        self.items: list[ReconcileItem] = []
        self.errors: list[str] = []
        self.still_lost: list[str] = []

    def note(self, kind: str, symbol: str, message: str, cid: str = "") -> None:
        key = (kind, symbol, cid)
        if kind in _ONCE and key in self.seen:
            log.debug("reconcile (already reported): %s", message)
            return  # the periodic check does not repeat the same finding every few minutes
        self.seen.add(key)
        item = ReconcileItem(kind, symbol, message, cid)
        self.items.append(item)
        level = "WARNING" if kind in _WARN_KINDS else "INFO"
        log.log(logging.WARNING if level == "WARNING" else logging.INFO, "reconcile: %s", message)
        if self.bus is not None:
            self.bus.publish(Event(kind=EventKind.RECONCILE, level=level, message=message,
                                   data={"item": kind, "symbol": symbol, "client_order_id": cid, "mode": self.mode}))

    def guarded(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except BotError as exc:
            if self.strict:
                raise
            self.errors.append(f"{what}: {exc}")
            log.warning("reconcile: %s failed: %s", what, exc)
            return None

    def price(self, symbol: str) -> float | None:
        """The current price, or None: a missing price never stops recovery (entry is the fallback)."""
        try:
            return float(self.ex.get_price(symbol))
        except BotError as exc:
            log.warning("reconcile: no price for %s (%s); using the entry price", symbol, exc)
            return None

    # -- intents ---------------------------------------------------------------------------------
    def intents(self) -> None:
        for intent in self.j.unresolved_intents():
            if intent.mode != self.mode:
                continue  # the other world's intents are resolved when that world starts
            self.guarded(f"{intent.client_order_id}: resolve", functools.partial(self.resolve, intent))
        for intent in self.j.fills_missing(self.mode):
            self.guarded(f"{intent.client_order_id}: fills", functools.partial(self.complete_fills, intent))

    def complete_fills(self, intent: OrderIntent) -> None:
        """A filled order whose fills the journal lacks (they could not be read when it filled):
        read its executions by orderLinkId and journal the missing ones (read-only, never a re-send)."""
        cid, sym = intent.client_order_id, intent.symbol
        order = self.ex.get_order(cid, sym)
        if order is None:
            log.warning("reconcile: %s is filled in the journal but the exchange no longer lists it", cid)
            return
        have = {f.exec_id for f in self.j.fills(client_order_id=cid)}
        fills = self.ex.get_fills(cid, sym)
        new = [f for f in fills if f.exec_id not in have]
        self.j.record_outcome(order, fills, mode=self.mode)
        if new:
            qty = sum(f.qty for f in new)
            self.note("fills", sym, f"{sym} {intent.side} ({cid}): {len(new)} missing fill(s) journaled, "
                                    f"{qty:g} @ {sum(f.qty * f.price for f in new) / qty:.6g}", cid)

    def resolve(self, intent: OrderIntent) -> None:
        cid, sym = intent.client_order_id, intent.symbol
        order = self.ex.get_order(cid, sym)
        if order is None and intent.status != OrderStatus.PENDING and self.recheck_delay > 0:
            self.sleep(self.recheck_delay)  # an order in flight at the crash can appear a moment later
            order = self.ex.get_order(cid, sym)
        if order is None:
            if intent.status == OrderStatus.PENDING:
                self.j.update_intent(cid, OrderStatus.FAILED, error="never sent: not on the exchange after restart")
                self.note("failed", sym, f"{sym} {intent.side} {intent.qty} ({cid}) was journaled but never sent; "
                                         "marked failed", cid)
                return
            age_s = (self.wall() * 1000 - intent.created_ms) / 1000
            if age_s > self.lost_timeout_s:
                self.j.update_intent(cid, OrderStatus.FAILED,
                                     error=f"not found on the exchange for {age_s:.0f} s: never accepted")
                self.note("failed", sym, f"{sym} {intent.side} {intent.qty} ({cid}) unseen on the exchange for "
                                         f"{age_s:.0f} s; marked failed (never accepted)", cid)
                return
            self.still_lost.append(cid)
            if intent.status == OrderStatus.LOST and not self.strict:
                log.info("reconcile: %s is still unknown to the exchange (%.0f s old)", cid, age_s)
                return  # said once already; the periodic poll does not repeat the alert every run
            if intent.status != OrderStatus.LOST:
                self.j.update_intent(cid, OrderStatus.LOST, error="sent, but the exchange does not know it yet")
            self.note("lost", sym, f"{sym} {intent.side} {intent.qty} ({cid}) was sent but its fate is unknown; "
                                   "tracked as LOST and polled until known", cid)
            return
        fills = self.ex.get_fills(cid, sym) if order.filled_qty > 0 else []
        self.j.record_outcome(order, fills, mode=self.mode)    # status, order and fills: all or nothing
        filled = f", filled {order.filled_qty:g} @ {order.avg_price:.6g}" if order.filled_qty else ""
        self.note("resolved", sym, f"{sym} {intent.side} {intent.qty:g} ({cid}): {intent.status} -> "
                                   f"{order.status}{filled}", cid)

    # -- positions -------------------------------------------------------------------------------
    def positions(self) -> list[Position]:
        ex_pos = self.guarded("read positions", self.ex.get_positions)
        if ex_pos is None:
            return list(ex_pos or [])
        theirs = {p.symbol: p for p in ex_pos}
        ours = {p.symbol: p for p in self.j.positions(self.mode)}
        for sym, p in theirs.items():
            self.guarded(f"{sym}: reconcile position",
                         functools.partial(self.exchange_position, p, ours.get(p.symbol)))
        for sym, jp in ours.items():
            if sym not in theirs:
                self.guarded(f"{sym}: close in journal", functools.partial(self.close_in_journal, jp))
        return list(self.guarded("read positions", self.ex.get_positions) or ex_pos)

    def _net_from_fills(self, symbol: str) -> float:
        return float(sum(f.qty if f.side == "Buy" else -f.qty for f in self.j.fills(symbol=symbol, mode=self.mode)))

    def exchange_position(self, p: Position, jp: Position | None) -> None:
        signed = p.size * p.direction
        tol = max(1e-9, 1e-6 * p.size)
        if jp is None:
            if abs(self._net_from_fills(p.symbol) - signed) <= tol:
                self.j.upsert_position(p, mode=self.mode)
                self.note("restored", p.symbol, f"{p.symbol} {p.side} {p.size:g} @ {p.entry_price:.6g} restored into "
                                                "the journal from its own fills")
                self.ensure_stop(p, on_exchange=p.stop_loss)
            elif self.s.ADOPTED_POSITIONS == "close":
                self.close_adopted(p)
            else:
                self.j.upsert_position(p, mode=self.mode)
                self.note("adopted", p.symbol, f"{p.symbol} {p.side} {p.size:g} @ {p.entry_price:.6g} found on the "
                                               "exchange but not in the journal; adopted and managed")
                self.ensure_stop(p, on_exchange=p.stop_loss)
            return
        kept = protected(p, jp, entry_from_exchange=self.linear)   # entry, stop, fees: never loosened
        if jp.side != p.side or abs(jp.size - p.size) > tol:
            self.j.upsert_position(kept, mode=self.mode)
            self.note("resized", p.symbol, f"{p.symbol}: journal had {jp.side} {jp.size:g}, the exchange has "
                                           f"{p.side} {p.size:g}; the journal follows the exchange"
                                           + (f" (stop kept at {kept.stop_loss:.6g})" if kept.stop_loss else ""))
            self.ensure_stop(kept, on_exchange=p.stop_loss)
        elif kept.stop_loss is None or kept.stop_loss != p.stop_loss or kept.stop_loss != jp.stop_loss:
            self.ensure_stop(kept, on_exchange=p.stop_loss)

    @property
    def linear(self) -> bool:
        return getattr(self.s, "EXCHANGE_CATEGORY", "linear") == "linear"

    def ensure_stop(self, p: Position, *, on_exchange: float | None = None) -> None:
        """Every position has a stop-loss: the one it carries (the exchange's, or the journal's merged
        in by `protected`) is put on the exchange when the exchange lacks it; a position without
        any gets STOP_LOSS_PCT from the worse of entry and the current price. A known stop the price
        has already crossed is never replaced by a looser one: the position is closed at market."""
        price = self.price(p.symbol) or p.entry_price
        wanted = p.stop_loss
        if wanted is not None and ((p.side == "long" and wanted >= price) or (p.side == "short" and wanted <= price)):
            self.close_now(p, reason="stop-loss", why=f"its stop {wanted:.6g} was crossed (price {price:.6g})")
            return
        if wanted is not None and (not self.linear or on_exchange == wanted):
            self.j.upsert_position(p, mode=self.mode)
            return
        pct = float(self.s.STOP_LOSS_PCT)
        if wanted is None:
            ref = min(p.entry_price, price) if p.side == "long" else max(p.entry_price, price)
            wanted = ref * (1 - pct) if p.side == "long" else ref * (1 + pct)
        tick = self.ex.get_instrument(p.symbol).tick_size
        stop = round_to_tick(wanted, tick)
        where = "on the exchange"
        if not self.linear:
            where = "in the journal (spot has no server-side stop: the bot watches it)"
        else:
            try:
                self.ex.set_trading_stop(p.symbol, stop_loss=stop)
            except InvalidOrderError as exc:
                # Not a reason to refuse the start: the journal keeps the stop and the bot watches it.
                where = f"in the journal only (the exchange refused it: {exc}; the bot watches it)"
        self.j.upsert_position(replace(p, stop_loss=stop), mode=self.mode)
        had = f"tightened from {on_exchange:.6g}" if on_exchange else "had none"
        self.note("stop", p.symbol, f"{p.symbol} {p.side} stop-loss set at {stop:.6g} {where} ({had})")

    def close_adopted(self, p: Position) -> None:
        self.close_now(p, reason="reconcile", why="found on the exchange but not in the journal (ADOPTED_POSITIONS=close)")

    def close_now(self, p: Position, *, reason: str, why: str) -> None:
        """Close `p` at market through a journaled intent, and journal its round trip."""
        cid = _new_cid()
        side = "Sell" if p.side == "long" else "Buy"
        self.j.record_intent(OrderIntent(client_order_id=cid, symbol=p.symbol, side=side, qty=p.size,  # type: ignore[arg-type]
                                         reduce_only=True, mode=self.mode, reason=reason))  # before it is sent
        self.j.update_intent(cid, OrderStatus.SENT)
        order = self.ex.close_position(p.symbol, client_order_id=cid)
        if order is None:
            self.j.update_intent(cid, OrderStatus.CANCELLED, error="position already flat")
            return
        self.j.record_order(order, self.mode)
        fills = self.ex.get_fills(cid, p.symbol)
        for f in fills:
            self.j.record_fill(f, mode=self.mode)
        exit_px = order.avg_price or p.mark_price or p.entry_price
        fees = sum(f.fee for f in fills) or order.fee
        pnl = p.direction * (exit_px - p.entry_price) * order.filled_qty - fees
        fees += p.fees
        pnl -= p.fees
        trade = ClosedTrade(p.symbol, p.side, order.filled_qty, p.entry_price, exit_px,
                            p.opened_ms or int(self.wall() * 1000), int(self.wall() * 1000), pnl, fees, reason=reason,
                            mode=self.mode)
        if reason == "reconcile":
            self.j.record_closed_trade(trade)
            self.note("closed-adopted", p.symbol, f"{p.symbol} {p.side} {p.size:g} {why}; closed @ {exit_px:.6g}", cid)
        else:
            self.j.close_position(trade)
            self.note("closed", p.symbol, f"{p.symbol} {p.side} {p.size:g}: {why}; closed at market @ {exit_px:.6g} "
                                          f"({reason})", cid)

    def close_in_journal(self, jp: Position) -> None:
        now_ms = int(self.wall() * 1000)
        trade, source = self._trade_from_exchange(jp), "the exchange's record"
        if trade is None:
            self._learn_executions(jp)
            trade, source = self._trade_from_fills(jp), "its fills"
        if trade is None:
            price = self.price(jp.symbol) or jp.entry_price
            pnl = jp.direction * (price - jp.entry_price) * jp.size - jp.fees
            trade = ClosedTrade(jp.symbol, jp.side, jp.size, jp.entry_price, price, jp.opened_ms, now_ms, pnl,
                                jp.fees, reason="reconcile", mode=self.mode)
            source = "the current price (estimate: the closing fills are unknown)"
        self.j.close_position(trade)
        self.note("closed", jp.symbol, f"{jp.symbol} {jp.side} {jp.size:g} is no longer on the exchange; closed in "
                                       f"the journal @ {trade.exit_price:.6g}, P&L {trade.pnl:+.2f} from {source}")

    def _trade_from_exchange(self, jp: Position) -> ClosedTrade | None:
        getter = getattr(self.ex, "closed_trades", None)  # the paper wallet keeps its round trips
        if not callable(getter):
            return None
        done = [t for t in getter() if t.symbol == jp.symbol and t.exit_ms >= jp.opened_ms]
        if not done:
            return None
        t = done[-1]
        return ClosedTrade(t.symbol, t.side, t.qty, t.entry_price, t.exit_price, t.entry_ms, t.exit_ms, t.pnl, t.fees,
                           reason="reconcile", mode=self.mode)

    def _learn_executions(self, jp: Position) -> None:
        """Journal the symbol's executions since the position opened, when the exchange can list them
        (`get_executions(symbol, since_ms=...)`, optional): a server-side stop's fill has no id of ours."""
        getter = getattr(self.ex, "get_executions", None)
        if callable(getter):
            for f in self.guarded(f"{jp.symbol}: executions", lambda: getter(jp.symbol, since_ms=jp.opened_ms)) or []:
                self.j.record_fill(f, mode=self.mode)

    def _trade_from_fills(self, jp: Position) -> ClosedTrade | None:
        """The round trip the journal's fills make of `jp` (entry and exit fees included): the
        fills replayed through the ledger end flat with a last round trip of jp's side and size.
        Else the closing fills since it opened, with the fees the journal's position row has."""
        dust = 0.0 if self.linear else float(self.ex.get_instrument(jp.symbol).qty_step)
        ledger, trades = replay_fills(self.j.fills(symbol=jp.symbol, mode=self.mode), mode=self.mode, dust=dust)
        if jp.symbol not in ledger.positions and trades:
            t = trades[-1]
            if t.side == jp.side and abs(t.qty - jp.size) <= max(1e-9, 1e-6 * jp.size) and t.exit_ms >= jp.opened_ms:
                reason = t.reason if t.reason in ("stop-loss", "take-profit") else "reconcile"
                return replace(t, reason=reason)
        closing_side = "Sell" if jp.side == "long" else "Buy"
        fills: list[Fill] = [f for f in self.j.fills(symbol=jp.symbol, mode=self.mode)
                             if f.time_ms >= jp.opened_ms and f.side == closing_side]
        qty = sum(f.qty for f in fills)
        if qty + 1e-12 < jp.size:
            return None
        exit_px = sum(f.qty * f.price for f in fills) / qty
        fees = jp.fees + sum(f.fee for f in fills)
        pnl = jp.direction * (exit_px - jp.entry_price) * jp.size - fees
        # a stop (or take-profit) Bybit executed is journaled as what it was, not as "reconcile"
        kinds = {f.reason for f in fills}
        reason = kinds.pop() if len(kinds) == 1 and kinds <= {"stop-loss", "take-profit"} else "reconcile"
        return ClosedTrade(jp.symbol, jp.side, jp.size, jp.entry_price, exit_px, jp.opened_ms,
                           max(f.time_ms for f in fills), pnl, fees, reason=reason, mode=self.mode)

    # -- open orders -----------------------------------------------------------------------------
    def open_orders(self) -> None:
        orders = self.guarded("read open orders", self.ex.get_open_orders) or []
        for o in orders:
            if o.client_order_id and self.j.get_intent(o.client_order_id) is not None:
                self.j.record_order(o, self.mode)
            else:
                self.note("foreign-order", o.symbol, f"{o.symbol}: open {o.side} order {o.qty:g} "
                                                     f"({o.client_order_id or o.exchange_order_id}) was not placed by "
                                                     "this bot; left alone", o.client_order_id)


def _reconcile(settings: Settings, exchange: Exchange, journal: EngineJournal, bus: EventBus | None, *, strict: bool,
               sleep: Callable[[float], None], recheck_delay: float, lost_timeout_s: float,
               wall: Callable[[], float], agent_checkpoint: str | None = None,
               seen: set[tuple[str, str, str]] | None = None) -> RecoveryReport:
    run = _Run(settings, exchange, journal, bus, strict=strict, sleep=sleep, recheck_delay=recheck_delay,
               lost_timeout_s=lost_timeout_s, wall=wall, seen=seen)
    run.intents()
    positions = run.positions()
    run.open_orders()
    return RecoveryReport(mode=run.mode, items=tuple(run.items), errors=tuple(run.errors),
                          agent_checkpoint=agent_checkpoint, positions=tuple(positions), lost=tuple(run.still_lost))


def recover(settings: Settings, *, exchange: Exchange, journal: EngineJournal, bus: EventBus | None,
            agent: AgentCheckpoints | None = None,
            sleep: Callable[[float], None] = time.sleep, recheck_delay: float = 1.0, lost_timeout_s: float = 600.0,
            wall: Callable[[], float] = time.time) -> RecoveryReport:
    """Run before the first trade of every start. Raises what the exchange or the checkpoint raised:
    if recovery cannot finish, the bot must not trade."""
    checkpoint = None
    if agent is not None and agent.store.latest() is not None:
        checkpoint = str(agent.load())   # CheckpointError on a corrupt file: no trading half-loaded
        log.info("agent restored from %s", checkpoint)
    report = _reconcile(settings, exchange, journal, bus, strict=True, sleep=sleep, recheck_delay=recheck_delay,
                        lost_timeout_s=lost_timeout_s, wall=wall, agent_checkpoint=checkpoint)
    log.info("recovery: %s", report.summary())
    if bus is not None:
        bus.publish(Event(kind=EventKind.RECONCILE, level="WARNING" if report.items else "INFO",
                          message=f"Recovery after start · {report.summary()}",
                          data={"item": "summary", "mode": report.mode, "changes": len(report.items)}))
    return report


def resolve_lost(settings: Settings, *, exchange: Exchange, journal: EngineJournal, bus: EventBus | None = None,
                 wall: Callable[[], float] = time.time) -> RecoveryReport:
    """What every command that talks to the exchange does first: look up each LOST intent of the
    exchange's mode by its orderLinkId, and each filled order whose fills the journal lacks, and
    journal what the exchange says. Read-only on the exchange (never a re-send, never a stop set);
    an order still unseen stays LOST (only the running bot declares it never accepted)."""
    run = _Run(settings, exchange, journal, bus, strict=False, sleep=time.sleep, recheck_delay=0.0,
               lost_timeout_s=float("inf"), wall=wall)
    for intent in journal.unresolved_intents():
        if intent.mode == run.mode and intent.status == OrderStatus.LOST:
            run.guarded(f"{intent.client_order_id}: resolve", functools.partial(run.resolve, intent))
    for intent in journal.fills_missing(run.mode):
        run.guarded(f"{intent.client_order_id}: fills", functools.partial(run.complete_fills, intent))
    return RecoveryReport(mode=run.mode, items=tuple(run.items), errors=tuple(run.errors),
                          lost=tuple(run.still_lost))


class Reconciler:
    """The periodic check while live: same steps as `recover` (without the agent), errors logged.
    The session calls `run` every RECONCILE_INTERVAL_SECONDS."""

    def __init__(self, settings: Settings, *, exchange: Exchange, journal: EngineJournal, bus: EventBus | None = None,
                 wall: Callable[[], float] = time.time, lost_timeout_s: float = 600.0) -> None:
        self.settings, self.exchange, self.journal, self.bus = settings, exchange, journal, bus
        self.wall, self.lost_timeout_s = wall, lost_timeout_s
        self._seen: set[tuple[str, str, str]] = set()

    def run(self) -> RecoveryReport:
        report = _reconcile(self.settings, self.exchange, self.journal, self.bus, strict=False, sleep=time.sleep,
                            recheck_delay=0.0, lost_timeout_s=self.lost_timeout_s, wall=self.wall,
                            seen=self._seen)
        if report.items or report.errors:
            log.info("periodic reconcile: %s", report.summary())
        return report
