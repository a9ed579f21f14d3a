"""Telegram commands as a person uses them: the real python-telegram-bot `Application` long-polls
the fake Bot API on loopback, over a running paper engine replaying the real seed candles.
Commands go in as updates; answers, inline keyboards and their edits come out; a confirmation is
pressed, one times out, another chat is ignored and logged once, and everything is journaled."""

from __future__ import annotations

import logging

import pytest

from bot.alerts.commands import format_profit, format_status, format_trades
from bot.alerts.telegram import TelegramNotifier
from bot.engine.app import App
from bot.engine.remote import ProfitReport
from bot.engine.trading_engine import TradingEngine
from bot.journal.store import Journal
from self_test.conftest import make_settings, wait_for
from self_test.fakes.telegram_server import TOKEN, FakeTelegram, SentMessage

CHAT = 4242
STRANGER = 999


def _reply(tg: FakeTelegram, after: int, needle: str, timeout: float = 20) -> SentMessage:
    """The first message to our chat, after the first `after`, whose text contains `needle`."""
    found: list[SentMessage] = []

    def seen() -> bool:
        found[:] = [m for m in tg.to(CHAT)[after:] if needle in m.text]
        return bool(found)

    wait_for(seen, timeout, message=f"a reply containing {needle!r}; got {[m.text for m in tg.to(CHAT)]}")
    return found[0]


def _ask(tg: FakeTelegram, text: str, needle: str) -> SentMessage:
    before = len(tg.to(CHAT))
    tg.say(CHAT, text)
    return _reply(tg, before, needle)


def test_commands_from_the_phone_over_a_running_paper_engine(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as tg:
        s = make_settings(tmp_path, environ={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": str(CHAT)},
                          TELEGRAM_BASE_URL=tg.url, CANDLE_INTERVAL="D", STRATEGY="sma", TRAINING_ENABLED=False,
                          REPLAY_CANDLE_SECONDS=0.05, BYBIT_BASE_URL="http://127.0.0.1:1",
                          FALLBACK_SYMBOLS=("BTCUSDT", "ETHUSDT"), TOP_PAIRS_COUNT=2)
        from bot.engine.app import fixed_pairs

        engine = TradingEngine(s, strategy="sma", pairs=fixed_pairs(s), force_replay=True)
        notifier = TelegramNotifier(s, bus=engine.bus)
        app = App(s, engine, notifier=notifier)
        assert notifier.serving_commands                       # the app assembly wires the commands
        notifier.serve_commands(app.remote, confirm_seconds=1.5, poll_timeout=1)
        app.start("PAPER")
        try:
            assert notifier.commands_ready.wait(20), "command polling did not start"
            wait_for(lambda: engine.candles_processed >= 20, 60, message="replayed candles")
            assert {"status", "closeall", "stop", "help"} <= set(tg.menu)

            status = _ask(tg, "/status", "📊")
            assert "PAPER" in status.text and "REPLAY" in status.text and "Equity" in status.text
            assert "USDT" in _ask(tg, "/balance", "💼").text
            assert "/closeall" in _ask(tg, "/help", "Commands:").text
            assert "cannot be started from Telegram" in _ask(tg, "/live", "Live trading").text
            assert "usage" in _ask(tg, "/trades lots", "usage").text

            # another chat: no answer at all, logged once however often it writes
            tg.say(STRANGER, "/status")
            tg.say(STRANGER, "/closeall")
            _ask(tg, "/help", "Commands:")                       # updates run in order: those two are done
            assert tg.to(STRANGER) == []
            ignored = [r for r in caplog.records if "ignored an update from chat 999" in r.getMessage()]
            assert len(ignored) == 1

            assert "paused" in _ask(tg, "/pause", "⏸").text
            wait_for(lambda: engine.snapshot().status == "Paused", 10, message="paused")
            assert "resumed" in _ask(tg, "/resume", "▶️").text
            wait_for(lambda: engine.snapshot().status == "Running", 10, message="running again")

            # a position to close: a person's order through the engine's own path
            assert engine.submit_manual_order("BTCUSDT", "buy", 50).result(20).ok
            wait_for(lambda: any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions), 20,
                     message="the BTCUSDT position in the snapshot")
            assert "BTCUSDT" in _ask(tg, "/status", "📊").text

            # /closeall, confirmed: the button closes everything
            question = _ask(tg, "/closeall", "Market-close all")
            assert any("Cancel" in label for label, _ in question.buttons)
            tg.press(question, "close")
            wait_for(lambda: any(e.startswith("✅") for e in question.edits), 30, message="close-all done")
            assert "closed BTCUSDT" in question.edits[-1]
            wait_for(lambda: not any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions), 10,
                     message="BTCUSDT closed in the snapshot")
            trades = _ask(tg, "/trades 50", "closed trade(s), net of fees")
            assert "BTCUSDT" in trades.text and "· manual" in trades.text      # the round trip just closed
            profit = _ask(tg, "/profit 3650", "💰")
            assert "after" in profit.text and "USDT fees" in profit.text
            assert "Buy-and-hold of the traded pairs over the same time: " in profit.text
            assert "unknown" not in profit.text                                # the replayed prices are there

            # /closeall, not confirmed in time: nothing happens, and a late press is refused
            assert engine.submit_manual_order("BTCUSDT", "buy", 50).result(20).ok
            wait_for(lambda: any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions), 20,
                     message="the BTCUSDT position again")
            late = _ask(tg, "/closeall", "Market-close all")
            wait_for(lambda: any("Not confirmed" in e for e in late.edits), 10, message="the confirmation to expire")
            assert any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions)
            tg.press(late, "close")
            wait_for(lambda: any("expired" in text for _id, text in tg.callback_answers), 10,
                     message="the late press answered as expired")
            assert any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions)

            # /stop asks keep-or-close, as the window does; keep
            stop = _ask(tg, "/stop", "Stop the bot?")
            assert [label for label, _ in stop.buttons] == ["Stop, keep positions", "Stop and close all", "Cancel"]
            tg.press(stop, "keep")
            wait_for(lambda: any(e.startswith("✅ stopped") for e in stop.edits), 40, message="stopped")
            assert not engine.running
            assert any(p.symbol == "BTCUSDT" for p in engine.snapshot().positions)   # kept, with its stop
        finally:
            app.shutdown()
    with Journal(tmp_path / "data" / "replay_state.db") as j:
        said = [e.message for e in j.recent_events(500) if e.data.get("source") == "telegram"]
    joined = "\n".join(said)
    for expected in ("telegram command /status: answered", "telegram command /pause: paused",
                     "telegram command /closeall (close): closed BTCUSDT", "not confirmed in time",
                     "telegram command /live: refused", "telegram command /stop (keep): stopped"):
        assert expected in joined, joined
    assert sum(m.startswith("telegram command /pause: paused") for m in said) == 1, said   # journaled once
    assert "999" not in joined


def test_trade_and_profit_texts() -> None:
    from bot.types import ClosedTrade, Mode, PositionSide

    t = ClosedTrade("ETHUSDT", PositionSide.LONG, 0.5, 290.12, 301.5, 1_546_300_800_000, 1_546_387_200_000,
                    5.3, 0.33, "take-profit", Mode.PAPER)
    text = format_trades([t])
    assert "2019-01-02 00:00 ETHUSDT long 0.5 290.12 → 301.50 · +5.30 USDT (fees 0.33) · take-profit" in text
    assert format_trades([]) == "No closed trade yet."
    r = ProfitReport(days=7, trades=3, net=-4.5, fees=1.2, wins=1, start_equity=1000, net_pct=-0.45,
                     buy_hold_pct=2.0)
    assert "Net -4.50 USDT (-0.45 %) after 1.20 USDT fees" in format_profit(r)
    assert "+2.00 %" in format_profit(r)


def test_status_names_a_position_the_bot_could_not_close() -> None:
    s = {"mode": "LIVE", "status": "running", "data_source": "LIVE", "connection": "WebSocket", "strategy": "sma",
         "equity": 1000.0, "balance": 990.0, "available": 900.0, "circuit": "closed",
         "positions": [{"symbol": sym, "side": "long", "size": 0.002, "entry_price": 30000.0, "mark_price": 30100.0,
                        "unrealised_pnl": 0.2, "stop_loss": 29000.0, "take_profit": 0.0, "unclosed": stuck}
                       for sym, stuck in (("BTCUSDT", True), ("ETHUSDT", False))]}
    lines = format_status(s).splitlines()
    assert lines[3].startswith("• 🚨 UNCLOSED") and "BTCUSDT" in lines[3] and "close it on Bybit" in lines[3]
    assert lines[4].startswith("• ETHUSDT long") and "UNCLOSED" not in lines[4]


@pytest.mark.parametrize("token", ["", TOKEN])
def test_no_commands_without_a_chat_id(tmp_path, token) -> None:
    s = make_settings(tmp_path, environ={"TELEGRAM_BOT_TOKEN": token})
    app = App(s, TradingEngine(s, strategy="sma"))
    assert not app.notifier.serving_commands
    app.shutdown()
