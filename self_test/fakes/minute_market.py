"""Real recorded prices as 1-minute candles for the fake Bybit, so `bot live --interval 1` can run
against it: the shipped seed candles (BTC hourly, ETH and LTC daily; historical_data/seed/) keep
their prices and order and are re-stamped one minute apart, ending at `end_ms`. The candles are
real; only their spacing is not (the fake says so nowhere else: use it for the live path, not for
trading results)."""

from __future__ import annotations

import pandas as pd

from bot.market.seed import load_seed

__all__ = ["minute_candles", "serve_minutes"]

MINUTE_MS = 60_000
_SOURCE = {"BTCUSDT": "60", "ETHUSDT": "D", "LTCUSDT": "D"}


def minute_candles(symbol: str, end_ms: int, n: int, *, back: int = 0) -> pd.DataFrame:
    """`n` seed candles of `symbol` ending `back` candles before the newest, re-stamped as 1-minute
    candles, the last one opening at `end_ms`."""
    seed = load_seed(symbol, _SOURCE[symbol])
    frame = seed.iloc[len(seed) - back - n: len(seed) - back].copy()
    start = end_ms - (len(frame) - 1) * MINUTE_MS
    frame.index = pd.Index(range(start, end_ms + 1, MINUTE_MS), dtype="int64", name=frame.index.name)
    # Bitstamp's daily rows have no quote turnover; Bybit always sends one: volume x close stands in
    frame["turnover"] = frame["turnover"].fillna(frame["volume"] * frame["close"])
    return frame


def serve_minutes(fake: object, symbols: tuple[str, ...], end_ms: int, n: int = 700, *, back: int = 0) -> None:
    """Serve `symbols` on the fake at interval "1" (`fake.set_klines`)."""
    for s in symbols:
        fake.set_klines(s, "1", minute_candles(s, end_ms, n, back=back))  # type: ignore[attr-defined]
