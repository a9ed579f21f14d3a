"""Live market data from the fake Bybit whose exchange side trades at those same candles' closes,
so a LIVE session against the fake fills at real recorded prices."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bot.market.feeds import BybitMarket

__all__ = ["PricedMarket"]


class PricedMarket(BybitMarket):
    """A `BybitMarket` that tells `fake` the close of every candle it hands out."""

    def __init__(self, *args: Any, fake: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fake = fake

    def next_candles(self, symbols: Any, timeout: float) -> Any:
        out = super().next_candles(symbols, timeout)
        for c in out:
            self.fake.set_price(c.symbol, c.close)
        return out

    def history(self, symbol: str, n: int) -> pd.DataFrame:
        h = super().history(symbol, n)
        self.fake.set_price(symbol, float(h["close"].iloc[-1]))
        return h
