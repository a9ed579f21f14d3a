"""Going live means what the README says (issue 18, item 3): the consent dialog shows the
promotion gate's checklist; with the gate unmet, live takes a second, typed confirmation naming
the unmet criteria, journaled as a gate override; a passed gate asks once.

Real window under Xvfb with the real Tk dialogs clicked and typed into through xdotool, the
loopback fake Bybit (real pybit) for the balance. UI_DOCS_SHOTS=dir keeps the dialog's picture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tkinter as tk
from pathlib import Path

import pytest

from bot.ui.dialogs import ScriptedDialogs
from self_test.conftest import make_settings
from self_test.ui.test_window import click, close_window, pump_until
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


def dialogs_of(root) -> list[tk.Toplevel]:
    return [w for w in root.winfo_children() if isinstance(w, tk.Toplevel) and w.winfo_exists()]


def button(dialog: tk.Misc, text: str):
    for w in dialog.winfo_children():
        if w.winfo_class() == "TButton" and w.cget("text") == text:
            return w
        found = button(w, text)
        if found is not None:
            return found
    return None


def type_text(widget, text: str) -> None:
    click(widget)   # the pointer on the entry: the X server sends it the keys
    subprocess.run(["xdotool", "type", "--delay", "20", text], check=True, timeout=20, env={**os.environ})


def live_settings(tmp_path: Path, fake_bybit, **overrides):
    keys = {"BYBIT_API_KEY": fake_bybit.api_key, "BYBIT_API_SECRET": fake_bybit.api_secret}
    return make_settings(tmp_path, environ=keys, BYBIT_BASE_URL=fake_bybit.url, FALLBACK_SYMBOLS=("BTCUSDT",),
                         **overrides)


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="typing into a dialog needs xdotool")
def test_live_with_the_gate_unmet_needs_the_typed_override_and_it_is_journaled(
        display: str, open_window, tmp_path: Path, fake_bybit) -> None:
    from bot.engine.app import assemble
    from bot.engine.trading_engine import TradingEngine

    fake_bybit.book.wallet = 1234.5
    settings = live_settings(tmp_path, fake_bybit)
    engine = TradingEngine(settings)
    ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=engine))
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and ctl.past is not None, 30, "the engine and the record")

    # 1) The override not typed: "Trade live anyway" stays disabled; "Stay in paper" keeps paper.
    seen: dict[str, str] = {}

    def refuse() -> bool:
        for d in dialogs_of(root):
            if button(d, "Trade live") is not None and "consent" not in seen:
                seen["consent"] = " ".join(str(w.cget("text")) for w in d.winfo_children()[0].winfo_children()
                                           if w.winfo_class() == "TLabel")
                click(button(d, "Trade live"))
            elif button(d, "Trade live anyway") is not None and "override" not in seen:
                seen["override"] = "shown"
                entry = ctl.dialogs.open_dialog.entry
                type_text(entry, "yes")
                seen["go_state"] = str(button(d, "Trade live anyway").cget("state"))
                click(button(d, "Stay in paper"))
        return "override" in seen and not dialogs_of(root)

    click(v.controls.live_radio)
    pump_until(root, refuse, 60, lambda: f"the consent and override dialogs (seen {sorted(seen)})")
    assert "1,234.50 USDT" in seen["consent"] and "closed trades" in seen["consent"]
    assert "never count" in seen["consent"]            # replay sessions do not count, said where it matters
    assert seen["go_state"] == "disabled"               # a wrong word cannot go live
    pump_until(root, lambda: "refused" in v.status.message.cget("text"), 10, "the refusal in the status bar")
    assert ctl.selected_mode == "PAPER" and not engine.has_live_consent()

    # 2) The override typed: LIVE, and the journal says it was an override of the unmet criteria.
    seen.clear()

    def accept() -> bool:
        for d in dialogs_of(root):
            if button(d, "Trade live") is not None and "consent" not in seen:
                seen["consent"] = "clicked"
                if os.environ.get("UI_DOCS_SHOTS") and shutil.which("xwd"):
                    root.update()
                    screenshot_png(display, Path(os.environ["UI_DOCS_SHOTS"]) / "after_gate_consent_dialog.png")
                click(button(d, "Trade live"))
            elif button(d, "Trade live anyway") is not None and "override" not in seen:
                seen["override"] = " ".join(str(w.cget("text")) for w in d.winfo_children()[0].winfo_children()
                                            if w.winfo_class() == "TLabel")
                type_text(ctl.dialogs.open_dialog.entry, "OVERRIDE")
                if os.environ.get("UI_DOCS_SHOTS") and shutil.which("xwd"):
                    root.update()
                    screenshot_png(display, Path(os.environ["UI_DOCS_SHOTS"]) / "after_gate_override_dialog.png")
                click(button(d, "Trade live anyway"))
        return ctl.selected_mode == "LIVE"

    click(v.controls.live_radio)
    pump_until(root, accept, 60, lambda: f"LIVE after the typed override (seen {sorted(seen)})")
    assert "Unmet: closed trades" in seen["override"] and "OVERRIDE" in seen["override"]
    consent = engine.journals.record().get_state(TradingEngine.CONSENT_KEY)
    assert consent["gate_passed"] is False and "closed trades" in consent["gate_override"]
    overrides = engine.journals.record().get_state("live_gate_overrides")
    assert len(overrides) == 1 and overrides[0]["gate_override"] == consent["gate_override"]
    close_window(ctl)


def test_a_passed_gate_asks_once_and_journals_no_override(display: str, open_window, tmp_path: Path,
                                                           fake_bybit) -> None:
    """A paper record that meets every criterion (small thresholds for the test): one confirmation."""
    import numpy as np
    import pandas as pd

    from bot.engine.app import assemble
    from bot.engine.promotion import paper_record_gate
    from bot.engine.trading_engine import TradingEngine
    from bot.journal.store import Journal
    from bot.market.cache import CandleCache
    from bot.market.seed import load_seed
    from bot.types import ClosedTrade, Mode, PositionSide

    settings = live_settings(tmp_path, fake_bybit, PROMOTION_MIN_TRADES=3, PROMOTION_MIN_DAYS=2, CANDLE_INTERVAL="60")
    seed = load_seed("BTCUSDT", "60").iloc[:24 * 5]
    CandleCache(settings.data_dir / "candles").write("BTCUSDT", "60", seed)
    times = np.asarray(seed.index, dtype=np.int64)
    with Journal(settings.data_dir / "state.db") as j:
        for i in range(4):   # four winners, a day apart
            t0 = int(times[i * 24])
            j.record_closed_trade(ClosedTrade(symbol="BTCUSDT", side=PositionSide.LONG, qty=0.01, entry_price=100,
                                              exit_price=110, entry_ms=t0, exit_ms=t0 + 3_600_000, pnl=5.0, fees=0.1,
                                              reason="signal", mode=Mode.PAPER))
        for k, t in enumerate(times):   # a steadily rising equity curve, small wiggles
            j.record_equity(int(t), 1000 + k * 0.2 + (0.05 if k % 2 else 0.0), 1000 + k * 0.2, Mode.PAPER)
    assert paper_record_gate(settings).passed, paper_record_gate(settings).criteria
    assert isinstance(seed, pd.DataFrame)

    dialogs = ScriptedDialogs(live=[True])
    engine = TradingEngine(settings)
    ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=engine), dialogs=dialogs)
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None, 30, "the engine to load")
    click(v.controls.live_radio)
    pump_until(root, lambda: ctl.selected_mode == "LIVE", 30, "LIVE after one confirmation")
    assert [k for k, _ in dialogs.asked] == ["confirm_live"]
    assert "6 of 6 met" in dialogs.asked[0][1]
    consent = engine.journals.record().get_state(TradingEngine.CONSENT_KEY)
    assert consent["gate_passed"] is True and "gate_override" not in consent
    close_window(ctl)
