"""`python -m bot download` as a user runs it, against the fake Bybit kline endpoint."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

from bot.market.cache import CandleCache
from self_test.conftest import ROOT


def run_bot(args, env_extra, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "bot", "--env-file", "/nonexistent.env", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands():
    out = run_bot(["--help"], {})
    assert out.returncode == 0 and "download" in out.stdout


def test_download_fills_the_cache_then_fetches_nothing_new(tmp_path, fake_bybit, btc_hourly):
    fake_bybit.set_klines("BTCUSDT", "60", btc_hourly)
    # ask for the span that reaches back to the last 1,500 recorded hours
    days = (time.time() * 1000 - btc_hourly.index[-1500]) / 86_400_000
    env = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "bot.log"),
           "BYBIT_BASE_URL": fake_bybit.url}
    out = run_bot(["download", "--symbols", "BTCUSDT", "--interval", "60", "--days", f"{math.ceil(days)}"], env)
    assert out.returncode == 0, out.stderr
    cached = CandleCache(tmp_path / "data" / "candles").read("BTCUSDT", "60")
    assert 1500 <= len(cached) <= 1524 and cached.index[-1] == btc_hourly.index[-1]
    assert "new candles" in out.stdout
    n_calls = len(fake_bybit.calls("/v5/market/kline"))
    again = run_bot(["download", "--symbols", "BTCUSDT", "--interval", "60"], env)
    assert again.returncode == 0 and "+0 new candles" in again.stdout
    assert len(fake_bybit.calls("/v5/market/kline")) == n_calls + 1


def test_bad_setting_exits_2_with_a_clear_message(tmp_path):
    out = run_bot(["download"], {"EXCHANGE_CATEGORY": "futures", "LOG_FILE": str(tmp_path / "b.log")})
    assert out.returncode == 2 and "EXCHANGE_CATEGORY" in out.stderr and "linear, spot" in out.stderr
