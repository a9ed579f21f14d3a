"""TelegramNotifier with the real python-telegram-bot client against the fake Bot API on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from bot.alerts.telegram import TelegramNotifier, fmt_price, fmt_qty, format_event, format_trade
from bot.events import Event, EventBus, EventKind
from bot.log_setup import setup_logging
from self_test.conftest import make_settings, wait_for
from self_test.fakes.telegram_server import TOKEN, FakeTelegram

CHAT = "424242"


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def tg_settings(tmp_path, url: str, **kw):
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": CHAT}
    return make_settings(tmp_path, environ=env, TELEGRAM_BASE_URL=url, **kw)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_trade_format_with_a_real_seed_price(btc_hourly) -> None:
    top = float(btc_hourly["close"].max())  # the Dec 2017 peak of the Coinbase hourly closes
    assert top == 19847.11
    assert format_trade("BTCUSDT", "Buy", 0.005, top, "PAPER") == \
        "🟢 BUY BTCUSDT 0.005 @ 19,847.11 · 99.24 USDT · PAPER"
    assert format_trade("BTCUSDT", "Sell", 0.005, top, "live").startswith("🔴 SELL BTCUSDT 0.005 @ 19,847.11")
    assert fmt_qty(0.0016) == "0.0016" and fmt_qty(2.0) == "2"
    assert fmt_price(0.0001234) == "0.0001234"


def test_event_formats() -> None:
    sl = Event(EventKind.STOP_LOSS, "stop", data={"symbol": "ETHUSDT", "side": "long", "qty": 0.5,
                                                  "price": 290.12, "pnl": -3.5, "mode": "PAPER"})
    assert format_event(sl) == "🛑 STOP-LOSS ETHUSDT long 0.5 @ 290.12 · P&L -3.50 USDT · PAPER"
    tp = Event(EventKind.TAKE_PROFIT, "tp hit on ETHUSDT")
    assert format_event(tp) == "🎯 TAKE-PROFIT: tp hit on ETHUSDT"
    assert format_event(Event(EventKind.MODE, "PAPER -> LIVE")) == "🔁 MODE: PAPER -> LIVE"
    assert format_event(Event(EventKind.RESTART, "restart 1/5")).startswith("♻️ RESTART")
    assert format_event(Event(EventKind.CRITICAL, "journal corrupt")).startswith("🚨 CRITICAL ERROR 🚨")
    assert format_event(Event(EventKind.VETO, "too risky")) is None
    assert format_event(Event(EventKind.INFO, "candle")) is None


def test_messages_arrive_with_the_right_text_and_only_to_the_chat(tmp_path, tg, btc_hourly) -> None:
    price = float(btc_hourly["close"].iloc[-1])  # 8035.88, the last hourly close of the seed
    bus = EventBus()
    n = TelegramNotifier(tg_settings(tmp_path, tg.url), bus=bus).start()
    try:
        bus.publish(Event(EventKind.TRADE, "filled", data={"symbol": "BTCUSDT", "side": "Buy", "qty": 0.0124,
                                                           "price": price, "mode": "PAPER"}))
        bus.publish(Event(EventKind.VETO, "not for the phone"))
        n.notify("hello from the bot")
        wait_for(lambda: len(tg.messages) == 2, 10, message="two messages")
    finally:
        n.stop()
    assert tg.texts() == ["🟢 BUY BTCUSDT 0.0124 @ 8,035.88 · 99.64 USDT · PAPER", "hello from the bot"]
    assert {m.chat_id for m in tg.messages} == {CHAT}
    assert n.sent == 2 and n.failed == 0


def test_retry_after_is_honoured(tmp_path, tg) -> None:
    tg.flood(1, retry_after=1)
    n = TelegramNotifier(tg_settings(tmp_path, tg.url)).start()
    try:
        assert n.notify("after the flood")
        wait_for(lambda: tg.texts() == ["after the flood"], 15, message="delivery after 429")
    finally:
        n.stop()
    sends = tg.send_times()
    assert len(sends) == 2 and n.rate_limited == 1
    assert sends[1] - sends[0] >= 1.0  # it waited at least retry_after before trying again


def test_telegram_down_does_not_slow_the_caller(tmp_path, tg) -> None:
    tg.hang()  # every request is held by the server
    n = TelegramNotifier(tg_settings(tmp_path, tg.url), request_timeout=30).start()
    finished = threading.Event()
    results: list[bool] = []

    def trading_loop() -> None:
        for i in range(50):
            results.append(n.notify(f"trade {i}"))
        finished.set()

    try:
        t = threading.Thread(target=trading_loop)
        t.start()
        # The loop finishes while Telegram is still holding the very first request: notify() does
        # not wait for the network. The bound is generous; the condition is what is asserted.
        assert finished.wait(10)
        t.join()
        assert results == [True] * 50
        wait_for(lambda: len(tg.calls) >= 1, 10, message="the first request to reach the fake")
        assert tg.messages == [] and len(tg.calls) == 1  # still stuck on the first one
        tg.release()
        wait_for(lambda: len(tg.messages) == 50, 20, message="all queued alerts after Telegram recovers")
    finally:
        n.stop()
    assert tg.texts() == [f"trade {i}" for i in range(50)]  # in order, none lost


def test_telegram_down_is_logged_never_raised(tmp_path, tg, caplog) -> None:
    tg.mode = "down"  # 502 for everything
    n = TelegramNotifier(tg_settings(tmp_path, tg.url), max_attempts=3, backoff_seconds=0.01).start()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.alerts.telegram"):
            assert n.notify("nobody hears this")
            wait_for(lambda: n.failed == 1, 10, message="the alert to be given up")
    finally:
        n.stop()
    assert len(tg.calls) == 3  # retried, then given up
    assert "alert dropped: nobody hears this" in caplog.text


def test_unreachable_telegram_and_token_not_logged(tmp_path, caplog) -> None:
    tg = FakeTelegram().start()
    url = tg.url
    tg.stop()  # nothing listens: connection refused
    log_file = tmp_path / "bot.log"
    setup_logging(log_file=log_file, level="DEBUG", secrets=[TOKEN], console=False)
    try:
        n = TelegramNotifier(tg_settings(tmp_path, url), max_attempts=2, backoff_seconds=0.01).start()
        try:
            n.notify("lost in the void")
            wait_for(lambda: n.failed == 1, 10, message="the alert to be given up")
        finally:
            n.stop()
    finally:
        setup_logging(log_file=None, console=False)
    text = log_file.read_text()
    assert "unreachable" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


def test_flood_of_identical_errors_is_deduplicated(tmp_path, tg) -> None:
    clock = Clock()
    bus = EventBus()
    n = TelegramNotifier(tg_settings(tmp_path, tg.url), bus=bus, dedup_seconds=60, clock=clock).start()
    try:
        for _ in range(20):
            bus.publish(Event(EventKind.ERROR, "BTCUSDT: fetch candles: NetworkError: timeout", level="ERROR"))
        bus.publish(Event(EventKind.ERROR, "ETHUSDT: fetch candles: NetworkError: timeout", level="ERROR"))
        clock.t += 61
        bus.publish(Event(EventKind.ERROR, "BTCUSDT: fetch candles: NetworkError: timeout", level="ERROR"))
        wait_for(lambda: len(tg.messages) == 3, 10, message="three messages")
    finally:
        n.stop()
    texts = tg.texts()
    assert texts[0] == "⚠️ BTCUSDT: fetch candles: NetworkError: timeout"
    assert texts[1].startswith("⚠️ ETHUSDT")
    assert texts[2].endswith("(+19 identical alerts suppressed)")
    assert n.suppressed == 19


def test_trades_are_never_deduplicated(tmp_path, tg) -> None:
    n = TelegramNotifier(tg_settings(tmp_path, tg.url)).start()
    try:
        for _ in range(3):
            n.on_event(Event(EventKind.TRADE, "same trade text twice is still two trades"))
        wait_for(lambda: len(tg.messages) == 3, 10, message="three trades")
    finally:
        n.stop()


def test_stop_flushes_the_queue(tmp_path, tg) -> None:
    n = TelegramNotifier(tg_settings(tmp_path, tg.url)).start()
    for i in range(5):
        n.notify(f"last words {i}")
    n.stop()
    assert tg.texts() == [f"last words {i}" for i in range(5)]
    assert not n.notify("after stop")


def test_disabled_without_token(tmp_path, tg) -> None:
    n = TelegramNotifier(make_settings(tmp_path, TELEGRAM_BASE_URL=tg.url)).start()
    assert not n.enabled
    assert n.notify("nothing") is False
    n.on_event(Event(EventKind.CRITICAL, "x"))
    n.stop()
    assert tg.calls == []
