"""Live candles pushed by Bybit's public kline stream (`kline.<interval>.<symbol>`), through pybit.

Only closed candles (`"confirm": true`) are kept; the still-moving one Bybit pushes every second or
so never reaches the engine. The link itself (reconnects, stalls) is `StreamLink`'s; the feed that
reads this queue (`BybitMarket`) covers the gaps over REST.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterable
from typing import Any

from bot.market.bybit_socket import LinkedStream
from bot.types import Candle

__all__ = ["KlineStream", "parse_kline", "SUBSCRIBE_ARGS_MAX"]

log = logging.getLogger(__name__)

SUBSCRIBE_ARGS_MAX = 10   # topics per subscribe request Bybit accepts on spot (reference section 6)


def parse_kline(msg: dict[str, Any], interval: str) -> list[Candle]:
    """The closed candles of one kline push (`confirm: true` rows only), oldest first.
    Raises ValueError / KeyError / TypeError on a message of the wrong shape."""
    topic = str(msg["topic"])
    _, _, symbol = topic.split(".", 2)
    out = []
    for row in msg["data"]:
        if row.get("confirm") is not True:
            continue
        out.append(Candle(symbol, interval, int(row["start"]), float(row["open"]), float(row["high"]),
                          float(row["low"]), float(row["close"]), float(row["volume"]), float(row["turnover"])))
    return sorted(out, key=lambda c: c.open_ms)


class KlineStream(LinkedStream):
    """Closed candles of `symbols` on `interval`, pushed by Bybit, in a queue (`get`)."""

    def __init__(self, settings: Any, symbols: Iterable[str], interval: str, *, base_url: str,
                 on_state: Callable[[str, str], None] | None = None) -> None:
        self.symbols = sorted(set(symbols))
        self.interval = str(interval)
        self._queue: queue.Queue[Candle] = queue.Queue()
        self.bad_messages = 0
        self._make_link(settings, settings.EXCHANGE_CATEGORY, base_url=base_url, on_state=on_state,
                        name=f"kline {self.interval}")

    def _subscribe(self, ws: Any) -> None:
        # Bybit spot takes at most SUBSCRIBE_ARGS_MAX topics per subscribe request (a longer one is
        # refused, and pybit only logs that): one request per chunk, on every category alike.
        for i in range(0, len(self.symbols), SUBSCRIBE_ARGS_MAX):
            ws.kline_stream(interval=self.interval, symbol=self.symbols[i:i + SUBSCRIBE_ARGS_MAX],
                            callback=self._on_kline)

    def _on_kline(self, msg: dict[str, Any]) -> None:
        # Runs in pybit's receive thread: anything raised here would end the link, so nothing is.
        try:
            candles = parse_kline(msg, self.interval)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self.bad_messages += 1
            log.warning("Bybit kline stream: malformed kline message ignored (%s): %.120r", exc, msg)
            return
        for c in candles:
            self._queue.put(c)

    def get(self, timeout: float) -> list[Candle]:
        """Closed candles pushed since the last call (waits up to `timeout` for the first)."""
        out: list[Candle] = []
        try:
            out.append(self._queue.get(timeout=max(0.0, timeout)) if timeout > 0 else self._queue.get_nowait())
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
