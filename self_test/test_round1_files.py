"""A user's files from before the package layout keep working: the journal, the paper wallet,
the agent checkpoint, the experience log and the candle cache written by the round-1 code
(self_test/fixtures/round1_data, see its README) are read by today's code as that code read them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from self_test.conftest import FIXTURES, ROOT, make_settings

OLD = FIXTURES / "round1_data"
EXPECTED = json.loads((OLD / "expected.json").read_text())


@pytest.fixture
def old_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(OLD, data)
    return data


def test_the_old_journal_reads_the_same(tmp_path, old_folder):
    from bot.journal.store import Journal

    settings = make_settings(tmp_path, HISTORICAL_DATA_PATH=str(old_folder))
    journal = Journal.for_settings(settings, name="replay_state.db")
    try:
        trades = journal.closed_trades()
        assert len(trades) == EXPECTED["trades"]
        assert round(sum(t.pnl for t in trades), 6) == pytest.approx(EXPECTED["net_pnl"], abs=1e-6)
        first = trades[0]
        assert [first.symbol, first.side, first.qty, first.entry_ms, first.exit_ms] == EXPECTED["first_trade"]
        assert len(journal.fills()) == EXPECTED["fills"]
        assert len(journal.intents()) == EXPECTED["intents"]
        assert len(journal.unresolved_intents()) == EXPECTED["unresolved"]
    finally:
        journal.close()


def test_the_old_cache_and_experience_read_the_same(old_folder):
    from bot.agent.checkpoints import load_experience
    from bot.market.cache import CandleCache

    frame = CandleCache(old_folder / "candles").read("BTCUSDT", "60")
    assert len(frame) == EXPECTED["cache_rows"]
    assert int(frame.index[-1]) == EXPECTED["cache_last_open_ms"]
    assert len(load_experience(old_folder / "training", "BTCUSDT")) == EXPECTED["experience_rows"]


@pytest.mark.slow
def test_a_paper_session_resumes_the_old_folder(tmp_path, old_folder):
    """`python -m bot paper` on the old folder: the agent, the wallet and the replay cursor come back."""
    env = dict(os.environ, HISTORICAL_DATA_PATH=str(old_folder), LOG_FILE=str(tmp_path / "bot.log"))
    run = subprocess.run([sys.executable, "-m", "bot", "paper", "--replay", "--strategy", "dqn", "--symbols",
                          "BTCUSDT", "--pace", "0", "--candles", "30", "--no-supervisor"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "agent restored from" in out and "dqn-000000000621.pt" in out
    assert f"equity {EXPECTED['wallet_balance']:.2f} USDT" in out
    assert "REPLAY resumes at 2017-10-18" in out
