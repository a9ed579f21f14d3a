"""Exact books: over a session of 20 round trips made with the commands a user types (`order`,
then `close-all`, each its own process state), the journal's closed-trade P&L is what the fake
Bybit wallet saw, to the cent's millionth: both fees included (the entry fee is paid by one
command, the exit by another)."""

from __future__ import annotations

import pytest

from bot.__main__ import main
from bot.journal.store import Journal


@pytest.fixture
def live_env(tmp_path, monkeypatch, fake_bybit):
    monkeypatch.setenv("HISTORICAL_DATA_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "bot.log"))
    monkeypatch.setenv("BYBIT_TIMEOUT", "2")
    monkeypatch.setenv("BYBIT_BASE_URL", fake_bybit.url)
    monkeypatch.setenv("BYBIT_API_KEY", "testkey")
    monkeypatch.setenv("BYBIT_API_SECRET", "testsecret")
    for k in ("EXCHANGE_CATEGORY", "LEVERAGE", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_journal_pnl_is_the_wallet_change_over_20_linear_round_trips(tmp_path, live_env, fake_bybit, btc_hourly,
                                                                     capsys):
    closes = btc_hourly["close"].to_numpy()[-400::10]          # real hourly closes, 10 hours apart
    start = fake_bybit.book.wallet
    for i in range(20):
        fake_bybit.set_price("BTCUSDT", round(float(closes[2 * i]), 1))
        side = "buy" if i % 2 == 0 else "sell"
        # --no-stop: the prices jump 10 hours at a time; a server-side stop or take-profit between two
        # commands would close the trade on Bybit, and only a bot's start journals that round trip
        assert main(["--env-file", "/dev/null", "order", "BTCUSDT", side, "40", "--live", "--yes", "--no-stop"]) == 0
        fake_bybit.set_price("BTCUSDT", round(float(closes[2 * i + 1]), 1))
        assert main(["--env-file", "/dev/null", "close-all", "--live", "--yes"]) == 0, capsys.readouterr().out
    assert all(p["size"] == 0 for p in fake_bybit.book.positions.values())
    with Journal(tmp_path / "data" / "state.db") as j:
        trades = j.closed_trades("LIVE")
        fills = j.fills(mode="LIVE")
    assert len(trades) == 20 and {t.side for t in trades} == {"long", "short"}
    paid = sum(float(e["execFee"]) for e in fake_bybit.book.executions)
    assert sum(t.fees for t in trades) == pytest.approx(paid, abs=1e-9)          # entry and exit fees
    assert sum(f.fee for f in fills) == pytest.approx(paid, abs=1e-9)
    assert sum(t.pnl for t in trades) == pytest.approx(fake_bybit.book.wallet - start, abs=1e-6)


def test_close_all_under_faults_closes_every_time_without_a_traceback(tmp_path, live_env, fake_bybit,
                                                                               btc_hourly, capsys):
    """The issue's run: close-all --live under 20 % rate limits / 10016 / HTTP 502 and 30 % lost
    order answers failed in 2 of 10 runs. Now each of 10 runs closes (exit 0), no close order is
    ever sent twice, and nothing prints a traceback."""
    fake_bybit.set_price("BTCUSDT", round(float(btc_hourly["close"].iloc[-1]), 1))
    for seed in range(10):
        assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "40", "--live", "--yes"]) == 0
        fake_bybit.chaos(0.2, lost=0.3, seed=seed)
        code = main(["--env-file", "/dev/null", "close-all", "--live", "--yes"])
        fake_bybit.chaos(0.0)
        out = capsys.readouterr()
        assert code == 0, out.out[-2000:]
        assert "Traceback" not in out.out + out.err
        assert all(p["size"] == 0 for p in fake_bybit.book.positions.values())
    closes = [o for o in fake_bybit.book.orders.values() if o["reduce"]]
    assert len(closes) == 10 and len({o["orderLinkId"] for o in closes}) == 10
    with Journal(tmp_path / "data" / "state.db") as j:
        assert len(j.closed_trades("LIVE")) == 10 and j.unresolved_intents() == []


def test_spot_end_to_end_fees_in_the_coin_dust_and_pnl(tmp_path, live_env, fake_bybit, btc_hourly, capsys):
    """Spot, where Bybit takes a buy's fee in the coin bought: a sell right after a buy of the same
    value sells what is free; close-all sells the free balance floored to the step and calls the
    rest dust (no 'STILL OPEN', no qty-0 order, no position in status); fees show in USDT; over
    20 round trips the journal's P&L is the wallet's change (USDT and coins) to within one
    quantity step's value."""
    live_env.setenv("EXCHANGE_CATEGORY", "spot")
    live_env.setenv("LEVERAGE", "1")
    closes = btc_hourly["close"].to_numpy()[-400::10]
    fake_bybit.set_price("BTCUSDT", round(float(closes[0]), 1))
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "20", "--live", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "fee 0.0000 USDT" not in out and " fee 0.0" in out            # the coin fee, in USDT
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "SELL", "20", "--live", "--yes"]) == 0
    assert main(["--env-file", "/dev/null", "status", "--live"]) == 0
    out = capsys.readouterr().out
    assert "positions (0)" in out and "dust (below Bybit's smallest order" in out
    start_usdt = fake_bybit.book.wallet
    start_coins = fake_bybit.book.coins.get("BTC", 0.0)
    for i in range(20):
        fake_bybit.set_price("BTCUSDT", round(float(closes[2 * i]), 1))
        assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "40", "--live", "--yes"]) == 0
        fake_bybit.set_price("BTCUSDT", round(float(closes[2 * i + 1]), 1))
        assert main(["--env-file", "/dev/null", "close-all", "--live", "--yes"]) == 0
        out = capsys.readouterr().out
        assert "STILL OPEN" not in out and "closed BTCUSDT long" in out
    assert all(float(o["qty"]) > 0 for o in fake_bybit.book.orders.values())          # never a qty-0 order
    assert fake_bybit.book.coins["BTC"] < 0.000001                                        # dust only
    with Journal(tmp_path / "data" / "state.db") as j:
        trades = j.closed_trades("LIVE")[-20:]
    assert len(trades) == 20 and all(t.reason == "close-all" for t in trades)
    last = float(round(closes[39], 1))
    wallet_change = (fake_bybit.book.wallet - start_usdt) + (fake_bybit.book.coins["BTC"] - start_coins) * last
    assert sum(t.pnl for t in trades) == pytest.approx(wallet_change, abs=0.000001 * last)   # one step
    paid = sum(float(e["execFee"]) * (float(e["execPrice"]) if e["feeCurrency"] == "BTC" else 1.0)
               for e in fake_bybit.book.executions[-40:])
    assert sum(t.fees for t in trades) == pytest.approx(paid, rel=1e-3)                 # both fees, in USDT
