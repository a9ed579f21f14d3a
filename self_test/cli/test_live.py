"""`python -m bot live` as a real process: its help, the path from the command line to the
engine's settings and assembly, and whole sessions on 1-minute candles against the fake Bybit,
under the supervisor and with --no-supervisor."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bot(tmp_path: Path, *args: str, **env_values: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    values = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "bot.log"),
              "BYBIT_BASE_URL": f"http://127.0.0.1:{closed_port()}", "BYBIT_TIMEOUT": "1",
              "SIMULATION_ORDER_DELAY": "0", "TELEGRAM_BOT_TOKEN": "", **env_values}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_", "CRASH_AT"))}
    env.update(values)
    return subprocess.run([sys.executable, "-m", "bot", "--env-file", str(env_file), *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))


def test_live_help_lists_its_options(tmp_path: Path) -> None:
    proc = run_bot(tmp_path, "live", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--yes", "--strategy", "--symbols", "--interval", "--candles", "--close-on-exit",
                   "--no-training", "--no-supervisor", "--override-gate"):
        assert option in proc.stdout, option
    assert "--pace" not in proc.stdout and "--replay" not in proc.stdout   # paper's options only


def test_live_builds_its_settings_and_engine_then_needs_bybit_market_data(tmp_path: Path) -> None:
    """The command line that once died in the settings (`'Namespace' object has no attribute
    'pace'`) reaches the engine: consent stored, pairs pinned by --symbols at interval 1, then the
    session refuses to trade live without Bybit's candles (exit 3, nothing traded)."""
    proc = run_bot(tmp_path, "live", "--yes", "--override-gate", "--strategy", "sma", "--symbols", "BTCUSDT,ETHUSDT",
                   "--interval", "1", "--no-supervisor", BYBIT_API_KEY="testkey", BYBIT_API_SECRET="testsecret",
                   RESTART_MAX_PER_HOUR="0")
    log = (tmp_path / "bot.log").read_text()
    assert "AttributeError" not in proc.stderr + log, proc.stderr[-2000:]
    assert proc.returncode == 3, log[-3000:]
    assert "live trading needs Bybit market data" in log and "engine stopped after 0 restarts" in log
    assert (tmp_path / "data" / "state.db").exists()            # the consent went into the record
    assert not (tmp_path / "data" / "paper_wallet.json").exists()


def test_live_with_the_gate_unmet_refuses_without_the_override_and_says_which_criteria(tmp_path: Path) -> None:
    """A fresh record has not passed the promotion gate: `--yes` alone trades nothing (exit 1,
    the checklist printed and the unmet criteria named); typed at the prompt, anything but the
    override word trades nothing either."""
    proc = run_bot(tmp_path, "live", "--yes", "--strategy", "sma", "--no-supervisor", BYBIT_API_KEY="testkey",
                   BYBIT_API_SECRET="testsecret")
    assert proc.returncode == 1, proc.stderr
    assert "[ ] closed trades: 0 (needs >= 30)" in proc.stdout and "never count" in proc.stdout
    assert "has not passed (unmet: closed trades" in proc.stderr and "--override-gate" in proc.stderr
    assert "Traceback" not in proc.stderr
    env_file = tmp_path / "test.env"
    typed = subprocess.run([sys.executable, "-c", "import sys, builtins; from bot.cli import live; "
                            "import argparse; from config import load_settings; "
                            f"s = load_settings({str(env_file)!r}); "
                            "a = argparse.Namespace(yes=False, override_gate=False); "
                            "print('RESULT', live._gate_unmet(a, s, ask=lambda p: 'yes please'))"],
                           capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert "RESULT None" in typed.stdout and "gate not overridden" in typed.stdout, typed.stderr[-2000:]


# -- the whole command against the fake Bybit, on 1-minute candles ---------------------------------
SPEED = 30.0          # fake seconds per real second: one 1-minute candle closes every 2 s


def live_against_fake(tmp_path: Path, *extra: str, candles: int = 14, speed: float = SPEED):
    """`python -m bot live --interval 1` as a real process against the fake Bybit (real pybit, signed
    requests, keys in the environment) on real seed prices served as 1-minute candles, with a fast
    wall clock shared by the fake and the bot process (self_test/fakes/fast_clock.py).
    Returns (process, fake, journal path, log text)."""
    import time

    from self_test.fakes.bybit_server import FakeBybit
    from self_test.fakes.fast_clock import FastClock
    from self_test.fakes.minute_market import serve_minutes

    t0 = (int(time.time()) // 60) * 60
    clock = FastClock(t0, speed)
    fake = FakeBybit(clock=clock, auth_clock=clock, follow_klines=True)
    # 800 candles; the 695th opens at t0, so the SMA(10/30) crosses at rows 695, 698, 700 come live
    serve_minutes(fake, ("BTCUSDT", "ETHUSDT"), end_ms=t0 * 1000 + (799 - 694) * 60_000, n=800)
    fake.start()
    try:
        env_file = tmp_path / "test.env"
        values = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "bot.log"),
                  "BYBIT_BASE_URL": fake.url, "BYBIT_TIMEOUT": "2", "MARKET_POLL_SECONDS": "0.3",
                  "TELEGRAM_BOT_TOKEN": "", "BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_", "CRASH_AT"))}
        env.update(values)
        env.update(clock.env())
        proc = subprocess.run([sys.executable, "-m", "bot", "--env-file", str(env_file), "live", "--yes",
                               "--strategy", "sma", "--symbols", "BTCUSDT,ETHUSDT", "--interval", "1",
                               "--candles", str(candles), "--no-training", "--override-gate", *extra],
                              env=env, capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    finally:
        fake.stop()
    return proc, fake, tmp_path / "data" / "state.db", (tmp_path / "bot.log").read_text()


@pytest.mark.parametrize("supervised", [False, True], ids=["no-supervisor", "supervisor"])
def test_live_runs_end_to_end_on_one_minute_candles(tmp_path: Path, supervised: bool) -> None:
    """The command a user types, for 7 closed 1-minute candles of two pairs: exit 0, every order
    Bybit holds is in the journal (journaled first, filled, with its fills) and nothing else is,
    no traceback anywhere."""
    from bot.journal.store import Journal

    proc, fake, db, log = live_against_fake(tmp_path, *(() if supervised else ("--no-supervisor",)))
    assert proc.returncode == 0, (proc.stderr[-3000:], log[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr + log, log[-3000:]
    assert "14 candles processed" in log
    # the account view is read from Bybit at most every ACCOUNT_REFRESH_SECONDS (2 s) and after
    # each order, not for every snapshot (about 5 reads a second while idle, before)
    # (the session lasts about 15 s: a read per snapshot would be dozens)
    reads = len(fake.calls("/v5/account/wallet-balance"))
    assert reads <= 12 + 3 * len(fake.book.orders), reads
    on_fake = {o["orderLinkId"]: o for o in fake.book.orders.values()}
    assert len(on_fake) >= 2, "no SMA crossing reached Bybit"
    journal = Journal(db)
    try:
        intents = {i.client_order_id: i for i in journal.intents(mode="LIVE")}
        assert set(intents) == set(on_fake)
        for cid, o in on_fake.items():
            assert intents[cid].status == "filled" and o["status"] == "Filled"
            assert sum(f.qty for f in journal.fills(client_order_id=cid)) == pytest.approx(o["cum_qty"])
        assert set(fake.book.links) == set(on_fake)              # every order carried its orderLinkId
        # every event is journaled in `events`: one trade event per order, the start and the stop
        events = journal.recent_events(10_000)
        fills = [e.data["client_order_id"] for e in events if e.kind == "trade" and "client_order_id" in e.data]
        assert sorted(fills) == sorted(on_fake)
        assert any("LIVE session started" in e.message for e in events)
        assert any(e.kind == "mode" and "engine stopped" in e.message for e in events)
        # the position left open is journaled with the stop Bybit holds for it
        for (sym, _), pos in fake.book.positions.items():
            if pos["size"]:
                (row,) = [p for p in journal.positions("LIVE") if p.symbol == sym]
                assert row.stop_loss == pytest.approx(pos["sl"]) and pos["sl"] > 0
    finally:
        journal.close()
    if supervised:
        assert "engine stopped after" not in log or "after 0 restarts" in log


def test_live_refuses_an_untrained_dqn_in_one_line(tmp_path: Path) -> None:
    proc = run_bot(tmp_path, "live", "--yes", "--override-gate", "--strategy", "dqn", "--symbols", "BTCUSDT",
                   "--no-supervisor", BYBIT_API_KEY="testkey", BYBIT_API_SECRET="testsecret")
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    # the shipped default model is there, but no `train` judged it: refused all the same
    assert len(lines) == 1 and "live trading with the DQN refused" in lines[0] and "walk-forward gate" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "data" / "state.db").exists()   # nothing started
