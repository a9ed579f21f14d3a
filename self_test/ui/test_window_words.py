"""User words everywhere (issue 18, item 6): one short line per refusal or warning, in trader's
words; columns that fit their contents; replay-only pairs shown as "no data"; the gate panel
saying that a replay session does not count; messages that do not move the layout.

Real window under Xvfb, real clicks, the seed's real candles replayed (BTCUSDT only: ETHUSDT has
no hourly seed, which is the replay-only case a user meets).
"""

from __future__ import annotations

import tkinter.font as tkfont
from pathlib import Path

import pytest

from bot.ui.dialogs import CLOSE_ALL, ScriptedDialogs
from bot.ui.words import one_line
from self_test.ui.test_window import click, close_window, pump_for, pump_until, session_settings

pytestmark = pytest.mark.gui


def test_one_line_keeps_the_point_and_drops_the_details() -> None:
    long = ("Bybit cannot be reached (Bybit kline request failed for BTCUSDT: HTTPConnectionPool(host='127.0.0.1', "
            "port=1): Max retries exceeded with url: /v5/market/kline?category=linear (Caused by "
            "NewConnectionError(...))); REPLAY of recorded real candles")
    assert one_line(long, 64) == "Bybit cannot be reached: replaying recorded real candles"
    assert one_line("paper exchange has no price for ETHUSDT yet: feed it a candle or set_price first", 80) == \
        "no price for ETHUSDT yet: this session has no candles for it"
    cut = one_line("order too small, not sent: BTCUSDT: 1.00 USDT at 4,189.98 is 0.0002, which rounds down to 0 "
                   "(the minimum order is 0.001)", 58)
    assert len(cut) <= 58 and cut.endswith("\u2026") and "\n" not in cut and cut.startswith("order too small")
    assert one_line("PAPER: the replay paper wallet (recorded candles), 6 closed trade(s) and more words", 64) == \
        "PAPER: the replay paper wallet, 6 closed trade(s) and more words"


def test_refusals_are_one_line_in_trader_words_and_replay_only_pairs_say_no_data(
        display: str, open_window, tmp_path: Path) -> None:
    from bot.engine.app import assemble

    settings = session_settings(tmp_path, STRATEGY="sma", TRAINING_ENABLED=False,
                                FALLBACK_SYMBOLS=("BTCUSDT", "ETHUSDT"), TOP_PAIRS_COUNT=2)
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=ScriptedDialogs(stop=[CLOSE_ALL]))
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               30, "the engine to load")
    promo = v.controls.promotion
    pump_until(root, lambda: "replay sessions (recorded candles) never count" in promo.get("1.0", "end"), 10,
               "the gate panel's note before Start")
    pump_for(root, 0.3)
    click(v.controls.start_button)
    pump_until(root, lambda: ctl.engine.snapshot().metrics.get("candles", 0) >= 5, 60, "replayed candles")

    # Hot pairs: ETHUSDT has no candles in this replay: "no data", not a score of 0.00.
    pump_until(root, lambda: v.controls.pairs.exists("ETHUSDT")
               and v.controls.pairs.set("ETHUSDT", "score") == "no data", 20,
               lambda: f"ETHUSDT as 'no data' (rows: {[(i, v.controls.pairs.set(i, 'score')) for i in v.controls.pairs.get_children()]})")
    assert v.controls.pairs.set("BTCUSDT", "score") != "no data"
    pump_until(root, lambda: "this replay session does not count" in promo.get("1.0", "end"), 90,
               "the gate panel to say the replay session does not count")

    # A refusal in trader's words, on one line, and the tables do not move.
    table_y = v.orders.positions.winfo_rooty()
    v.orders.symbol.set("ETHUSDT")
    v.orders.amount.set("50")
    click(v.orders.buy_button)
    pump_until(root, lambda: "ETHUSDT" in v.orders.result.cget("text")
               and not v.orders.result.cget("text").endswith("sent ..."), 30,
               lambda: f"the ETHUSDT refusal (shown: {v.orders.result.cget('text')!r})")
    shown = v.orders.result.cget("text")
    assert "set_price" not in shown and "no price for ETHUSDT" in shown and "\n" not in shown, shown
    v.orders.amount.set("1")
    v.orders.symbol.set("BTCUSDT")
    click(v.orders.buy_button)
    pump_until(root, lambda: "order too small" in v.orders.result.cget("text"), 30,
               lambda: f"the too-small refusal (shown: {v.orders.result.cget('text')!r})")
    root.update_idletasks()
    assert v.orders.positions.winfo_rooty() == table_y, "a message moved the positions table"
    assert len(v.status.message.cget("text")) <= 56

    # Columns fit what they show: a closed time, a symbol.
    font = tkfont.nametofont("TkDefaultFont")
    trades = v.orders.trades
    assert trades.column("#0", "width") >= font.measure("09-23 05:00") + 12
    assert trades.column("symbol", "width") >= font.measure("BTCUSDT") + 8
    close_window(ctl)
