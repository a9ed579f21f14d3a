"""The app assembly (bot/engine/app.py): one engine and its Telegram notifier with one life, as
the window and `python -m bot paper|live` use it. Real candles replayed, the fake Telegram."""

from __future__ import annotations

import pytest

from bot.engine.app import App, assemble
from bot.engine.trading_engine import TradingEngine
from bot.types import DataSource
from self_test.conftest import make_settings, wait_for
from self_test.fakes.telegram_server import TOKEN, FakeTelegram


def test_the_app_starts_the_notifier_with_the_engine_and_shuts_both_down(tmp_path) -> None:
    with FakeTelegram() as tg:
        s = make_settings(tmp_path, environ={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "77"},
                          TELEGRAM_BASE_URL=tg.url, CANDLE_INTERVAL="D", STRATEGY="sma", TRAINING_ENABLED=False,
                          REPLAY_CANDLE_SECONDS=0, BYBIT_BASE_URL="http://127.0.0.1:1")
        app = assemble(s, symbols=["ethusdt", " BTCUSDT "], force_replay=True)
        assert app.settings.FALLBACK_SYMBOLS == ("ETHUSDT", "BTCUSDT") and app.settings.TOP_PAIRS_COUNT == 2
        app.start("PAPER")
        wait_for(lambda: app.engine.candles_processed >= 10, timeout=60, message="replayed candles")
        snap = app.engine.snapshot()
        assert snap.data_source == DataSource.REPLAY and set(snap.active_pairs) == {"ETHUSDT", "BTCUSDT"}
        assert not (tmp_path / "data" / "top_pairs.json").exists()      # the pairs were pinned, never ranked
        app.shutdown(close_positions=True)
        assert not app.running
        texts = tg.texts()             # shutdown stopped the engine first, then flushed the notifier
    assert any(t.startswith("🔁 MODE: PAPER session started") for t in texts), texts
    assert any(t.startswith("🔁 MODE: engine stopped") for t in texts), texts
    with pytest.raises(RuntimeError, match="shut down"):
        app.start("PAPER")
    app.shutdown()                     # twice is harmless


def test_an_app_around_a_given_engine_uses_its_bus(tmp_path) -> None:
    s = make_settings(tmp_path)
    engine = TradingEngine(s, strategy="sma")
    app = App(s, engine)
    assert app.notifier.bus is engine.bus and not app.notifier.enabled    # no token: alerts are off
    assert assemble(s, engine=engine).engine is engine
    app.shutdown()                     # never started: nothing to stop, nothing opened
    assert not (tmp_path / "data" / "state.db").exists()
