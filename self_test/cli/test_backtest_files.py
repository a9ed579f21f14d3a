"""`backtest --data` as a user runs it, on files written from the real seed candles: files read
right (day-first dates, the interval read off the timestamps, rules of an unknown symbol read off
its prices) or refused in one line with a non-zero exit and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bot.market.seed import load_seed
from self_test.cli.test_commands import bot


@pytest.fixture(scope="module")
def ltc_daily_file(tmp_path_factory) -> Path:
    """Bitstamp's real LTC daily candles as a DD.MM.YYYY file named after a symbol Bybit's table lacks."""
    df = load_seed("LTCUSDT", "D").reset_index()
    df["open_time"] = pd.to_datetime(df["open_time"], unit="ms").dt.strftime("%d.%m.%Y")
    path = tmp_path_factory.mktemp("files") / "LTCUSD_bitstamp_daily.csv"
    df.rename(columns={"open_time": "Date"}).to_csv(path, index=False)
    return path


def one_line_refusal(run) -> str:
    text = run.stdout + run.stderr
    assert run.returncode != 0, text
    assert "Traceback" not in text, text
    return text


def test_daily_day_first_file_of_an_unknown_symbol_is_read_right(tmp_path, ltc_daily_file):
    out = tmp_path / "o"
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "sma", "--data", str(ltc_daily_file),
              "--no-plot", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "925 candles of D" in run.stdout and "dates: day-first" in run.stdout
    assert "symbol: LTCUSD (from the file name" in run.stdout
    assert "rules for LTCUSD derived from the data" in run.stdout and "price tick 0.01" in run.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["interval"] == "D" and m["start"].startswith("2017-06-25")
    trades = pd.read_csv(out / "trades.csv")
    cents = (trades["entry_price"] * 100).round(6)
    assert len(trades) > 5 and (cents == cents.round()).all()          # fills on the data's 0.01 grid ...
    assert ((trades["entry_price"] * 10).round(6) % 1 != 0).any()       # ... not on BTCUSDT's 0.1


def test_interval_that_contradicts_the_file_is_refused(tmp_path, ltc_daily_file):
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "sma", "--data", str(ltc_daily_file),
              "--interval", "60", "--no-plot")
    assert "candles are 1 day apart (interval D), not --interval 60" in one_line_refusal(run)


def test_analyst_on_daily_candles_refuses_before_running(tmp_path, ltc_daily_file):
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "analyst", "--data", str(ltc_daily_file),
              "--no-plot")
    text = one_line_refusal(run)
    assert "needs candles of 4 h or shorter; these are daily" in text
    assert "0/925" not in text            # refused before the first candle


def test_analyst_fast_path_and_untrained_dqn_are_refused(tmp_path):
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "analyst", "--path", "fast", "--no-plot")
    assert "cannot take the fast path" in one_line_refusal(run)
    # no checkpoint at all: none in the folder and the shipped default switched off
    (tmp_path / "none.env").write_text("DQN_SHIPPED_MODEL=false\n")
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "dqn", "--start", "2019-06-01", "--no-plot")
    assert "no trained DQN checkpoint" in one_line_refusal(run)


def test_import_puts_a_downloaded_file_into_the_cache_for_every_command(tmp_path):
    """A CryptoDataDownload-style hourly file (newest first, VolumeFrom/VolumeTo, an hour twice):
    imported with its repair report, then backtested from the cache by symbol alone."""
    from self_test.market.test_ohlcv_file import cdd_hourly, write_with_banner

    part = load_seed("BTCUSDT", "60").iloc[:1500]
    df = cdd_hourly(part)
    df = pd.concat([df.iloc[:10], df.iloc[[10]], df.iloc[10:]]).reset_index(drop=True)
    path = write_with_banner(tmp_path / "Coinbase_BTCUSD_1h.csv", df)
    data = tmp_path / "data"
    run = bot(tmp_path, data, "import", str(path), "--symbol", "BTCUSDT")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rows newest first: read in reverse" in run.stdout and "1 repeated timestamp(s) dropped" in run.stdout
    assert "BTCUSDT/60: +1500 new candles" in run.stdout
    again = bot(tmp_path, data, "import", str(path), "--symbol", "BTCUSDT", "--strict")
    assert "repeats the time" in one_line_refusal(again)
    out = tmp_path / "o"
    run = bot(tmp_path, data, "backtest", "--strategy", "sma", "--symbols", "BTCUSDT", "--no-plot", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((out / "metrics.json").read_text())["candles"] == 1500     # the cache, not the seed


def test_optimize_reads_a_file_through_the_same_reader(tmp_path, ltc_daily_file):
    """A daily file under a space that says hourly is refused; saying `interval: D` runs it, and
    the file's report is printed as in backtest."""
    space = tmp_path / "space.yaml"
    body = ("strategy: sma\nsymbol: LTCUSD\ninterval: \"{iv}\"\nfolds: 2\nholdout: 0.25\nmin_trades: 1\n"
            "params:\n  fast: {{type: int, low: 5, high: 20}}\n  slow: {{type: int, low: 30, high: 60, step: 10}}\n")
    space.write_text(body.format(iv="60"))
    args = ("optimize", "--space", str(space), "--data", str(ltc_daily_file), "--method", "random", "--samples", "4",
            "--jobs", "1", "--no-progress", "--out", str(tmp_path / "o"))
    assert "(interval D), not --interval 60" in one_line_refusal(bot(tmp_path, tmp_path / "data", *args))
    space.write_text(body.format(iv="D"))
    run = bot(tmp_path, tmp_path / "data", *args)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "925 candles of D" in run.stdout and "dates: day-first" in run.stdout
    assert (tmp_path / "o" / "results.csv").exists()
