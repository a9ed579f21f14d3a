"""Restart protection against the paper wallet (SimExchange, persisted) fed real seed candles."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.recovery import Reconciler, recover
from bot.events import EventBus, EventKind
from bot.exchange.sim import SimExchange
from bot.journal.store import Journal
from bot.types import Candle, OrderIntent, OrderStatus, Position
from self_test.conftest import make_settings

SYM = "BTCUSDT"


def candle(frame, i: int) -> Candle:
    row = frame.iloc[i]
    return Candle(SYM, "60", int(frame.index[i]), float(row["open"]), float(row["high"]), float(row["low"]),
                  float(row["close"]), float(row["volume"]), float(row["turnover"]))


class Rig:
    """A persisted paper wallet and a journal in one data folder; `restart()` reopens both from disk."""

    def __init__(self, tmp_path: Path, frame, **overrides) -> None:
        self.settings = make_settings(tmp_path, **overrides)
        self.frame = frame
        self.wallet = self.settings.data_dir / "paper_wallet.json"
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.ex = SimExchange(self.settings, state_path=self.wallet)
        self.journal = Journal.for_settings(self.settings)
        self.ex.on_candle(candle(frame, 0))

    def restart(self) -> None:
        self.journal.close()
        self.ex = SimExchange(self.settings, state_path=self.wallet)
        self.journal = Journal.for_settings(self.settings)

    def place(self, cid: str, side: str, qty: float, *, stop: str = "none", stop_loss: float | None = None) -> None:
        """What the executor does, stopping where a crash would stop it: 'intent', 'sent', 'order', 'none'."""
        mode = self.ex.mode
        self.journal.record_intent(OrderIntent(cid, SYM, side, qty, stop_loss=stop_loss, mode=mode))  # type: ignore[arg-type]
        if stop == "intent":
            return
        self.journal.update_intent(cid, OrderStatus.SENT)
        if stop == "sent":
            return
        order = self.ex.create_order(SYM, side, qty, stop_loss=stop_loss, client_order_id=cid)  # type: ignore[arg-type]
        if stop == "order":
            return
        self.journal.update_intent(cid, order.status, exchange_order_id=order.exchange_order_id)
        for f in self.ex.get_fills(cid, SYM):
            self.journal.record_fill(f, mode=mode)
        pos = next(p for p in self.ex.get_positions() if p.symbol == SYM)
        self.journal.upsert_position(pos, mode=mode)

    def reconcile_events(self) -> list:
        out = []
        while not self.events.empty():
            ev = self.events.get_nowait()
            if ev.kind == EventKind.RECONCILE:
                out.append(ev)
        return out

    def recover(self, **kw):
        kw.setdefault("sleep", lambda s: None)
        return recover(self.settings, exchange=self.ex, journal=self.journal, bus=self.bus, **kw)

    def close(self) -> None:
        self.journal.close()


@pytest.fixture
def rig(tmp_path, btc_hourly):
    r = Rig(tmp_path, btc_hourly)
    yield r
    r.close()


def test_clean_start_agrees(rig) -> None:
    rep = rig.recover()
    assert rep.ok and rep.items == ()
    assert "agree" in rep.summary()
    assert rig.reconcile_events()[-1].data["item"] == "summary"


def test_intent_journaled_never_sent_is_failed(rig) -> None:
    rig.place("c-intent", "Buy", 0.01, stop="intent")
    rig.restart()
    rep = rig.recover()
    assert rig.journal.get_intent("c-intent").status == OrderStatus.FAILED
    assert [i.kind for i in rep.items] == ["failed"]
    assert rig.ex.get_positions() == [] and rig.ex.get_order("c-intent") is None  # nothing was sent on recovery


def test_sent_but_answer_lost_is_resolved_and_position_restored(rig) -> None:
    rig.place("c-sent", "Buy", 0.01, stop="order", stop_loss=2400.0)  # crash: exchange filled, journal says SENT
    rig.restart()
    rep = rig.recover()
    intent = rig.journal.get_intent("c-sent")
    assert intent.status == OrderStatus.FILLED and intent.exchange_order_id == "paper-c-sent"
    fills = rig.journal.fills(client_order_id="c-sent")
    assert len(fills) == 1 and fills[0].qty == 0.01
    assert [p.symbol for p in rig.journal.positions("PAPER")] == [SYM]
    assert [i.kind for i in rep.items] == ["resolved", "restored"]  # its own fills explain it: not adopted
    assert rig.journal.positions("PAPER")[0].stop_loss == 2400.0
    # Recovering twice changes nothing and never duplicates an order or a fill.
    rep2 = rig.recover()
    assert rep2.items == () and len(rig.journal.fills()) == 1
    assert len([o for o in rig.ex._state.orders.values()]) == 1


def test_sent_and_not_found_is_lost_then_polled_until_known(rig) -> None:
    rig.place("c-lost", "Buy", 0.01, stop="sent")
    rig.restart()
    waits: list[float] = []
    rep = rig.recover(sleep=waits.append, recheck_delay=0.5)
    assert waits == [0.5]  # it asked again after a moment before calling it lost
    assert rig.journal.get_intent("c-lost").status == OrderStatus.LOST
    assert not rep.ok and [i.kind for i in rep.items] == ["lost"]
    ev = [e for e in rig.reconcile_events() if e.data["item"] == "lost"]
    assert ev and ev[0].level == "WARNING"
    # The periodic poll asks again but does not repeat the alert every few minutes.
    rep = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal, bus=rig.bus).run()
    assert rep.items == () and rep.lost == ("c-lost",) and not rep.ok
    assert rig.reconcile_events() == []
    # The order turns up on the exchange later (a slow matching engine): the poll resolves it.
    rig.ex.on_candle(candle(rig.frame, 1))
    rig.ex.create_order(SYM, "Buy", 0.01, client_order_id="c-lost")
    rep = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal, bus=rig.bus).run()
    assert rig.journal.get_intent("c-lost").status == OrderStatus.FILLED
    assert [i.kind for i in rep.items] == ["resolved", "restored", "stop"]  # it had no stop-loss: now it has
    assert rig.ex.get_positions()[0].stop_loss is not None


def test_lost_for_too_long_is_declared_never_accepted(rig) -> None:
    rig.place("c-old", "Sell", 0.01, stop="sent")
    later = lambda: 1e10  # noqa: E731 - long after the intent was created
    rep = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal, wall=later, lost_timeout_s=600).run()
    assert rig.journal.get_intent("c-old").status == OrderStatus.FAILED
    assert "never accepted" in rig.journal.get_intent("c-old").error
    assert [i.kind for i in rep.items] == ["failed"]


def test_unknown_position_is_adopted_with_a_stop(rig) -> None:
    rig.ex.create_order(SYM, "Buy", 0.02, client_order_id="by-hand-1")  # placed outside the bot
    rep = rig.recover()
    kinds = [i.kind for i in rep.items]
    assert kinds == ["adopted", "stop"]
    price = rig.ex.get_price(SYM)
    pos = rig.ex.get_positions()[0]
    assert pos.stop_loss is not None and pos.stop_loss < min(pos.entry_price, price)
    assert pos.stop_loss == pytest.approx(min(pos.entry_price, price) * (1 - rig.settings.STOP_LOSS_PCT), abs=0.1)
    assert rig.journal.positions("PAPER")[0].stop_loss == pos.stop_loss
    assert {e.data["item"] for e in rig.reconcile_events()} >= {"adopted", "stop", "summary"}


def test_spot_holding_gets_its_stop_in_the_journal(tmp_path, btc_hourly) -> None:
    rig = Rig(tmp_path, btc_hourly, EXCHANGE_CATEGORY="spot")
    try:
        rig.ex.create_order(SYM, "Buy", 0.02, client_order_id="bought-by-hand")
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["adopted", "stop"]
        assert "spot has no server-side stop" in rep.items[1].message
        assert rig.ex.get_positions()[0].stop_loss is None      # nothing was asked of the exchange
        assert rig.journal.positions("PAPER")[0].stop_loss is not None  # the bot watches it
        rec = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal, bus=rig.bus)
        assert rec.run().items == () and rec.run().items == ()  # agreed: nothing to repeat every few minutes
    finally:
        rig.close()


def test_unknown_position_closed_when_configured(tmp_path, btc_hourly) -> None:
    rig = Rig(tmp_path, btc_hourly, ADOPTED_POSITIONS="close")
    try:
        rig.ex.create_order(SYM, "Sell", 0.02, client_order_id="by-hand-2")
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["closed-adopted"]
        assert rig.ex.get_positions() == []
        cid = rep.items[0].client_order_id
        intent = rig.journal.get_intent(cid)  # the closing order was journaled like any other
        assert intent.status == OrderStatus.FILLED and intent.reason == "reconcile" and intent.reduce_only
        (trade,) = rig.journal.closed_trades("PAPER")
        assert trade.reason == "reconcile" and trade.side == "short" and trade.qty == 0.02
    finally:
        rig.close()


def test_position_closed_while_the_bot_was_down(rig) -> None:
    f = rig.frame
    entry_close = float(f["close"].iloc[0])
    stop = round(entry_close * 0.99, 1)
    rig.place("c-open", "Buy", 0.01, stop_loss=stop)
    rig.journal.close()  # the bot stops; the paper market goes on (stop triggers on a real candle)
    i = next(k for k in range(1, len(f)) if float(f["low"].iloc[k]) <= stop)
    for k in range(1, i + 1):
        rig.ex.on_candle(candle(f, k))
    assert rig.ex.get_positions() == []
    rig.restart()
    rep = rig.recover()
    assert [it.kind for it in rep.items] == ["closed"]
    (trade,) = rig.journal.closed_trades("PAPER")
    sim_trade = rig.ex.closed_trades()[-1]
    assert trade.reason == "reconcile" and trade.exit_price == sim_trade.exit_price
    assert trade.pnl == pytest.approx(sim_trade.pnl) and trade.pnl < 0
    assert rig.journal.positions("PAPER") == []


def test_foreign_open_order_is_reported_once_by_the_periodic_check(rig) -> None:
    price = rig.ex.get_price(SYM)
    rig.ex.create_order(SYM, "Buy", 0.01, "Limit", price=round(price * 0.9, 1), client_order_id="phone-limit")
    rec = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal, bus=rig.bus)
    assert [i.kind for i in rec.run().items] == ["foreign-order"]
    assert rec.run().items == ()
    assert rig.ex.get_open_orders()[0].client_order_id == "phone-limit"  # left alone


def test_size_mismatch_follows_the_exchange(rig) -> None:
    rig.place("c-a", "Buy", 0.03)
    rig.journal.upsert_position(Position(SYM, "long", 0.05, rig.ex.get_price(SYM)), mode="PAPER")
    rep = rig.recover()
    assert [i.kind for i in rep.items][0] == "resized"
    assert rig.journal.positions("PAPER")[0].size == pytest.approx(0.03)


def test_intents_of_the_other_mode_are_left_for_it(rig) -> None:
    rig.journal.record_intent(OrderIntent("live-1", SYM, "Buy", 0.01, mode="LIVE", status=OrderStatus.SENT))
    rep = rig.recover()
    assert rep.items == () and rig.journal.get_intent("live-1").status == OrderStatus.SENT


def test_corrupt_checkpoint_stops_recovery(rig) -> None:
    sl = pytest.importorskip("bot.agent.self_learning")
    agent = sl.SelfLearningBot(rig.settings)
    models = rig.settings.data_dir / "models"
    models.mkdir(parents=True)
    (models / "dqn-000000000100.pt").write_bytes(b"\x00garbage, not a checkpoint" * 50)
    from bot.errors import CheckpointError

    with pytest.raises(CheckpointError, match="dqn-000000000100.pt"):
        rig.recover(agent=agent)
    assert (models / "dqn-000000000100.pt").exists()


# -- live: BybitExchange (real pybit) against the fake Bybit V5 server -----------------------------

KEYS = {"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}


class LiveRig:
    def __init__(self, tmp_path: Path, fake, price: float, **overrides) -> None:
        from bot.exchange.bybit import BybitExchange

        self.make = lambda: BybitExchange(self.settings, retries=3, retry_delay=0.01, fill_wait=1.0)
        self.settings = make_settings(tmp_path, environ=dict(KEYS), BYBIT_BASE_URL=fake.url, BYBIT_TIMEOUT=2.0,
                                      **overrides)
        self.fake = fake
        fake.set_price(SYM, price)
        self.ex = self.make()
        self.journal = Journal.for_settings(self.settings)
        self.bus = EventBus()

    def place(self, cid: str, side: str, qty: float, *, complete: bool, stop_loss: float | None = None) -> None:
        self.journal.record_intent(OrderIntent(cid, SYM, side, qty, stop_loss=stop_loss, mode="LIVE"))  # type: ignore[arg-type]
        self.journal.update_intent(cid, OrderStatus.SENT)
        order = self.ex.create_order(SYM, side, qty, stop_loss=stop_loss, client_order_id=cid)  # type: ignore[arg-type]
        if not complete:
            return  # the process died before the answer was journaled
        self.journal.record_order(order, "LIVE")
        for f in self.ex.get_fills(cid, SYM):
            self.journal.record_fill(f, mode="LIVE")
        self.journal.upsert_position(self.ex.get_positions()[0], mode="LIVE")

    def restart(self) -> None:
        self.journal.close()
        self.ex = self.make()
        self.journal = Journal.for_settings(self.settings)

    def recover(self):
        return recover(self.settings, exchange=self.ex, journal=self.journal, bus=self.bus, sleep=lambda s: None)


@pytest.fixture
def live_price(btc_hourly) -> float:
    return round(float(btc_hourly["close"].iloc[-1]), 1)  # the last real recorded close


def test_live_answer_lost_is_resolved_from_bybit(tmp_path, fake_bybit, live_price) -> None:
    rig = LiveRig(tmp_path, fake_bybit, live_price)
    try:
        rig.place("live-sent-1", "Buy", 0.004, complete=False)
        rig.restart()
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["resolved", "restored", "stop"]
        intent = rig.journal.get_intent("live-sent-1")
        assert intent.status == OrderStatus.FILLED and intent.exchange_order_id
        fills = rig.journal.fills(client_order_id="live-sent-1", mode="LIVE")
        assert sum(f.qty for f in fills) == pytest.approx(0.004) and all(f.exec_id for f in fills)
        assert fills[0].price == live_price
        assert list(fake_bybit.book.links) == ["live-sent-1"]  # exactly one order on the exchange
        sl = fake_bybit.book.positions[(SYM, 0)]["sl"]
        assert sl == pytest.approx(round(live_price * (1 - rig.settings.STOP_LOSS_PCT), 1))
        assert rig.journal.positions("LIVE")[0].stop_loss == sl
        assert rig.recover().items == ()  # a second start finds nothing to do
    finally:
        rig.journal.close()


def test_live_manual_position_is_adopted_with_a_stop(tmp_path, fake_bybit, live_price) -> None:
    rig = LiveRig(tmp_path, fake_bybit, live_price)
    try:
        rig.make().create_order(SYM, "Sell", 0.003, client_order_id="phone-app-1")  # by hand, outside the bot
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["adopted", "stop"]
        (pos,) = rig.journal.positions("LIVE")
        assert pos.side == "short" and pos.size == pytest.approx(0.003)
        assert fake_bybit.book.positions[(SYM, 0)]["sl"] > live_price  # a short's stop is above the market
    finally:
        rig.journal.close()


def test_live_server_side_stop_while_down_closes_in_journal(tmp_path, fake_bybit, btc_hourly) -> None:
    entry = round(float(btc_hourly["close"].iloc[-500]), 1)
    low = round(float(btc_hourly["low"].iloc[-499:].min()), 1)  # a real later low below the entry
    stop = round((entry + low) / 2, 1)
    assert low < stop < entry
    rig = LiveRig(tmp_path, fake_bybit, entry)
    try:
        rig.place("live-open-1", "Buy", 0.002, complete=True, stop_loss=stop)
        rig.journal.close()
        fake_bybit.set_price(SYM, low)  # Bybit's own stop closes the position while the bot is down
        rig.journal = Journal.for_settings(rig.settings)
        rig.ex = rig.make()
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["closed"]
        assert rig.journal.positions("LIVE") == []
        (trade,) = rig.journal.closed_trades("LIVE")
        # journaled as what it was (a stop-loss, with its fill), not as "reconcile"; both fees in the P&L
        assert trade.reason == "stop-loss" and trade.exit_price == low and trade.entry_price == entry
        assert trade.pnl == pytest.approx(0.002 * (low - entry) - trade.fees) and trade.pnl < 0
        assert trade.fees == pytest.approx(sum(float(e["execFee"]) for e in fake_bybit.book.executions))
    finally:
        rig.journal.close()


def test_unreachable_exchange_stops_recovery_but_not_the_periodic_check(tmp_path, fake_bybit, live_price) -> None:
    from bot.errors import NetworkError
    from self_test.fakes.bybit_server import Fault

    rig = LiveRig(tmp_path, fake_bybit, live_price)
    try:
        fake_bybit.inject("/v5/position/list", Fault("http", count=100, status=502))
        with pytest.raises(NetworkError):  # no trading on a half-checked state
            rig.recover()
        rep = Reconciler(rig.settings, exchange=rig.ex, journal=rig.journal).run()
        assert not rep.ok and "read positions" in rep.errors[0]
    finally:
        rig.journal.close()


def test_a_restart_never_loosens_a_stop_it_may_tighten_one(tmp_path, fake_bybit, live_price) -> None:
    """Linear: the journal's (trailed) stop is tighter than the one on Bybit (the trailing update
    never reached it): the restart puts the journal's on Bybit. Then Bybit's is tighter than the
    journal's: the journal follows. Never the looser of the two, and no STOP_LOSS_PCT stop."""
    from dataclasses import replace

    rig = LiveRig(tmp_path, fake_bybit, live_price)
    try:
        first = round(live_price * 0.97, 1)
        rig.place("live-open-1", "Buy", 0.002, complete=True, stop_loss=first)
        trailed = round(live_price * 0.99, 1)
        (row,) = rig.journal.positions("LIVE")
        rig.journal.upsert_position(replace(row, stop_loss=trailed), mode="LIVE")
        rig.restart()
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["stop"] and "tightened from" in rep.items[0].message
        ((_, pos),) = [(k, p) for k, p in fake_bybit.book.positions.items() if p["size"]]
        assert pos["sl"] == trailed and rig.journal.positions("LIVE")[0].stop_loss == trailed
        pos["sl"] = round(live_price * 0.995, 1)                       # tightened on Bybit by hand
        rig.restart()
        assert rig.recover().items == ()
        assert rig.journal.positions("LIVE")[0].stop_loss == pos["sl"]
    finally:
        rig.journal.close()


def test_spot_stop_and_entry_survive_restarts_and_a_crossed_stop_closes(tmp_path, fake_bybit, live_price) -> None:
    """Spot has no server-side stop: the journal's entry and stop are the truth. A restart keeps
    them exactly (Bybit's spot 'entry' is only a mark, and no new, lower stop is made up); when the
    price crossed the stop while the bot was down, the restart closes at market as a stop-loss."""
    from dataclasses import replace

    rig = LiveRig(tmp_path, fake_bybit, live_price, EXCHANGE_CATEGORY="spot", LEVERAGE=1.0)
    try:
        fake_bybit.book.wallet = 1000.0
        rig.journal.record_intent(OrderIntent("spot-1", SYM, "Buy", 0.002, mode="LIVE"))  # type: ignore[arg-type]
        order = rig.ex.create_order(SYM, "Buy", 0.002, client_order_id="spot-1")  # type: ignore[arg-type]
        rig.journal.record_outcome(order, rig.ex.get_fills("spot-1", SYM), mode="LIVE")
        stop = round(live_price * 0.98, 1)
        (held,) = rig.ex.get_positions()
        rig.journal.upsert_position(replace(held, entry_price=live_price, stop_loss=stop), mode="LIVE")
        fake_bybit.set_price(SYM, round(live_price * 0.99, 1))         # lower, above the stop: marks move
        for _ in range(2):
            rig.restart()
            rep = rig.recover()
            assert [i.kind for i in rep.items] == []
            (row,) = rig.journal.positions("LIVE")
            assert row.stop_loss == stop and row.entry_price == live_price
        fake_bybit.set_price(SYM, round(live_price * 0.97, 1))         # through the stop while down
        rig.restart()
        rep = rig.recover()
        assert [i.kind for i in rep.items] == ["closed"] and "stop" in rep.items[0].message
        assert rig.journal.positions("LIVE") == [] and fake_bybit.book.coins.get("BTC", 0) == 0
        (trade,) = rig.journal.closed_trades("LIVE")
        assert trade.reason == "stop-loss" and trade.entry_price == live_price
    finally:
        rig.journal.close()
